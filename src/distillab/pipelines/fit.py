"""Train one model and evaluate it: the step every training job shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from distillab.modules.callbacks import TrainClock
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.io import atomic_write_json

LAST = Path("checkpoints") / "last.ckpt"


@dataclass
class JobResult:
    """What a job hands back to its caller (the CLI, a sweep, the quickstart)."""

    metrics: dict[str, float]
    run_dir: Path
    checkpoint: str | None = None  # the best checkpoint by val/ppl, else the last one


class Compressor(Protocol):
    """What follows training (`distillab.pipelines.compress.Compression`)."""

    def run(self, dm, module: Seq2SeqModule, ckpt: str, metrics_before: dict) -> dict: ...


@dataclass
class Stage:
    """Where and how one model trains, built by the composition root: its run directory, its
    trainer (callbacks and loggers attached), the checkpoint it resumes from and what
    compression follows."""

    run_dir: Path
    trainer: pl.Trainer
    clock: TrainClock
    resume_from: str | None = None
    compression: Compressor | None = None


def evaluate(trainer: pl.Trainer, module: Seq2SeqModule, dm, ckpt: str | None = None) -> dict:
    """Validation and test metrics (without the losses) of `module`, or of `ckpt` loaded into it."""
    val = trainer.validate(module, datamodule=dm, ckpt_path=ckpt, verbose=False)[0]
    test = trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False)[0]
    return {k: float(v) for k, v in {**val, **test}.items() if not k.endswith("/loss")}


def eval_trainer(run_dir: Path) -> pl.Trainer:
    """A quiet single-process CPU trainer for validation and test passes."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(run_dir),
    )


def fit_and_evaluate(module: Seq2SeqModule, dm, stage: Stage) -> JobResult:
    """Train, evaluate the best checkpoint (or the final weights), write metrics.json (rank 0),
    then compress if asked."""
    trainer, run_dir = stage.trainer, stage.run_dir
    last = run_dir / LAST
    trainer.fit(module, datamodule=dm, ckpt_path=stage.resume_from)
    if not trainer.strategy.broadcast(last.exists()):  # the same answer on every rank
        trainer.save_checkpoint(last)
    cb = trainer.checkpoint_callback
    best = cb.best_model_path if cb is not None and cb.best_model_path else None
    metrics = evaluate(trainer, module, dm, best)
    metrics.update(
        {
            "model/params": sum(p.numel() for p in module.model.parameters()),
            "trainer/global_step": trainer.global_step,
            "time/train_s": round(stage.clock.train_s, 3),
            "throughput/train_tokens_per_s": round(stage.clock.tokens_per_s, 1),
        }
    )
    if trainer.is_global_zero:
        atomic_write_json(run_dir / "metrics.json", metrics)
        atomic_write_json(run_dir / "checkpoint.json", {"best": best, "last": str(last)})
    close_loggers(trainer)
    if stage.compression is not None and trainer.is_global_zero:
        stage.compression.run(dm, module, best or str(last), metrics)
    return JobResult(metrics, run_dir, best or str(last))


def close_loggers(trainer: pl.Trainer) -> None:
    """End the W&B run, so the next job of an in-process sweep starts its own, and shut down
    W&B's background service: `finish()` can return before that service has written the
    offline run's log to disk (seen on a loaded machine: a log holding only its header), and
    the job's outputs must be complete when it returns."""
    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.finish()
            import wandb

            wandb.teardown()
