"""`distillab-eval`'s config: its keys, the checkpoint, the compression settings (checked in
the training run's config, whose trainer a fine-tuning phase uses), the output root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from pydantic import ConfigDict, Field, ValidationError

from distillab.config.groups import Paths, Seed
from distillab.config.messages import raise_one_line
from distillab.config.run import check_output_root, job, resolved
from distillab.config.targets import Node
from distillab.config.teacher import Compress
from distillab.errors import ConfigError


def run_config(ckpt: str | Path) -> Path:
    """The training run's resolved config: `<run_dir>/config.yaml` for a checkpoint in
    `<run_dir>/checkpoints/` (or `<run_dir>/compressed/`)."""
    path = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"ckpt={ckpt}: no {path} (the training run's config); evaluate a checkpoint "
            "inside a distillab run directory"
        )
    return path


def job_config(cfg: DictConfig) -> DictConfig:
    """The training run's saved config with this invocation's compress, seed, threads and paths."""
    job = OmegaConf.load(run_config(cfg.ckpt))
    job = OmegaConf.merge(job, {"compress": cfg.compress, "experiment_name": cfg.experiment_name})
    with open_dict(job):
        job.seed = cfg.seed
        job.threads = cfg.threads if cfg.threads is not None else job.get("threads")
        job.paths = cfg.paths
    return job


class EvalConfig(Node):
    model_config = ConfigDict(title="distillab-eval")
    ckpt: str
    compress: dict  # checked in the training run's config (`validate_eval`)
    paths: Paths
    experiment_name: Any
    job: str
    seed: Seed
    threads: int | None = Field(None, ge=1)
    plots: bool
    num_dialogues: int = Field(ge=1)


def check_ckpt(cfg: DictConfig) -> str:
    """The checkpoint to evaluate: set and a file (before its run's config is read)."""
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError("ckpt is required: distillab-eval ckpt=PATH (a distillab checkpoint)")
    if not isinstance(cfg.ckpt, str) or not Path(cfg.ckpt).is_file():
        raise ConfigError(f"ckpt={cfg.ckpt}: no such checkpoint file")
    return cfg.ckpt


def validate_eval(cfg: DictConfig, run: DictConfig) -> tuple[EvalConfig, Compress]:
    """`cfg`: distillab-eval's; `run`: the training run's config with this invocation's
    compress (`job_config`)."""
    check_ckpt(cfg)
    top = resolved(OmegaConf.create({k: v for k, v in cfg.items() if k != "compress"}))
    job_cfg = resolved(run)
    try:
        checked = EvalConfig.model_validate({**top, "compress": {}})
    except ValidationError as e:
        raise_one_line(e, EvalConfig)
    try:
        job(checked.job)
        compress = Compress.model_validate(job_cfg["compress"])
        compress.check_budget(job_cfg["trainer"].get("max_steps"))
    except ValidationError as e:
        raise_one_line(e, Compress, ("compress",))
    except ValueError as e:
        raise ConfigError(str(e).replace("@", "job")) from None
    if compress.schedule is not None and compress.finetune_steps == 0:
        raise ConfigError(
            "compress.schedule is set but distillab-eval has no training to prune during: "
            "set compress.schedule=null (one step) or compress.finetune_steps > 0"
        )
    check_output_root(checked.paths.output_root)
    return checked, compress
