"""`distillab-eval`'s config (`validate_eval`): its keys, the checkpoint, the compression
settings resolved in the training run's config, the output root."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from distillab.errors import ConfigError
from distillab.validate.compress import check_compress
from distillab.validate.config import check_job, resolved
from distillab.validate.fields import check_schema
from distillab.validate.paths import check_output_root
from distillab.validate.schemas import EVAL, PATHS


def validate_eval(cfg: DictConfig) -> None:
    """`distillab-eval`'s config: its keys, the checkpoint and its run's config, the
    compression settings (resolved in the training run's config, whose trainer a fine-tuning
    phase uses), the output root."""
    from distillab.compose.evaluation import job_config

    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError("ckpt is required: distillab-eval ckpt=PATH (a distillab checkpoint)")
    ckpt = cfg.ckpt
    if not isinstance(ckpt, str) or not Path(ckpt).is_file():
        raise ConfigError(f"ckpt={ckpt}: no such checkpoint file")
    top = {k: v for k, v in cfg.items() if k != "compress"}
    c = resolved(OmegaConf.create(top))
    check_schema("", {**c, "compress": {}}, EVAL, "distillab-eval")
    check_schema("paths", c["paths"], PATHS, "paths")
    check_job(c["job"])
    job = resolved(job_config(cfg))
    compress = job["compress"]
    check_compress(compress, job["trainer"])
    if compress["schedule"] is not None and compress["finetune_steps"] == 0:
        raise ConfigError(
            "compress.schedule is set but distillab-eval has no training to prune during: "
            "set compress.schedule=null (one step) or compress.finetune_steps > 0"
        )
    check_output_root(c["paths"]["output_root"])
