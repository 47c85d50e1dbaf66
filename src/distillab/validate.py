"""The CLIs' whole check before any work: the typed config (`distillab.config`), plus what
needs the pipelines' own knowledge: the run directory (`resume=`, a run already there) and, for
`distillab-eval`, the training run's config that the checkpoint belongs to."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from distillab.config import EvalConfig, RunConfig, check_teacher_outputs
from distillab.config import validate as validate_config
from distillab.config import validate_eval as validate_eval_config
from distillab.config.evaluation import check_ckpt, job_config
from distillab.runs.state import check_resumable, check_run_dir_reuse

__all__ = ["check_teacher_outputs", "validate", "validate_eval"]


def validate(cfg: DictConfig) -> RunConfig:
    """`distillab-train`'s config, checked; `resume=RUN_DIR` must name a resumable run, and
    otherwise the run directory must not hold another run already (this job's own interrupted
    run excepted: a requeued job continues it)."""
    run = validate_config(cfg)
    if run.resume:
        check_resumable(run.resume)
    else:
        check_run_dir_reuse(OmegaConf.to_container(cfg, resolve=True))
    return run


def validate_eval(cfg: DictConfig) -> EvalConfig:
    check_ckpt(cfg)
    return validate_eval_config(cfg, job_config(cfg))[0]
