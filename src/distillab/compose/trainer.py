"""The trainer of one training stage: Lightning's `Trainer` from the `trainer` group, with the
`callbacks` and `logger` groups, our reliability callbacks and the cluster environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger

from distillab.modules.callbacks import PlainProgress, TrainClock
from distillab.modules.reliability import GracefulStop, RngState, SafeCheckpointIO
from distillab.pipelines.compress import Compression
from distillab.pipelines.fit import LAST, Stage
from distillab.utils.ranks import is_rank_zero


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    """`cfg.trainer` with `cfg.callbacks` and `cfg.logger` (their paths interpolate the run's
    `paths.output_dir`), a progress display and the whole resolved config logged."""
    interactive = sys.stdout.isatty()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c] + callbacks
    # a terminal gets a progress bar; the log lines go to the run's log file either way
    callbacks.append(PlainProgress(console=not interactive))
    if interactive:
        callbacks.append(pl.callbacks.RichProgressBar())
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    if cfg.get("resume") and is_rank_zero():
        keep_csv_history(loggers)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
        enable_progress_bar=interactive,
        **cluster_plugins(cfg),
    )


def keep_csv_history(loggers: list) -> None:
    """A resumed run's CSV logger would delete the `metrics.csv` of the steps before the
    interruption (Lightning clears it when the log directory is not empty): it is kept beside
    the new one as `metrics.<n>.csv`, n = 0 for the first resume."""
    for lg in loggers:
        if isinstance(lg, CSVLogger):
            old = Path(lg.log_dir) / "metrics.csv"
            if old.is_file():
                old.rename(
                    old.with_name(f"metrics.{len(list(old.parent.glob('metrics.*.csv')))}.csv")
                )


def cluster_plugins(cfg: DictConfig) -> dict[str, Any]:
    """Checkpoints written atomically, the replaced `last.ckpt` kept (`SafeCheckpointIO`);
    under SLURM, Lightning's SLURM environment without its own requeue (a SIGUSR1 handler
    that saves an `hpc_ckpt` and calls `scontrol requeue`): submitit requeues the job, after
    `GracefulStop` saved `last.ckpt` on its notice. Nothing when `trainer.plugins` is set."""
    if cfg.trainer.get("plugins") is not None:
        return {}
    plugins: list[Any] = [SafeCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return {"plugins": plugins}


def build_stage(cfg: DictConfig, resume_from: str | None, compression: Compression | None) -> Stage:
    """One model's training in `cfg.paths.output_dir`: the trainer with the clock, the graceful
    stop that saves `last.ckpt`, RNG states in checkpoints and gradual pruning if scheduled."""
    run_dir = Path(cfg.paths.output_dir)
    clock = TrainClock()
    pruning = compression.training_callbacks() if compression is not None else []
    callbacks = [clock, GracefulStop(run_dir / LAST), RngState(), *pruning]
    return Stage(run_dir, build_trainer(cfg, run_dir, callbacks), clock, resume_from, compression)
