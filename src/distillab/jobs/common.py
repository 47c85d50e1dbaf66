"""Pieces every job shares: data, module arguments, the trainer, fit + evaluate, run info."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from distillab.compress import step as compress
from distillab.data import DialogueDataModule
from distillab.jobs.heads import task_heads
from distillab.jobs.resume import LAST, is_rank_zero, resume_checkpoint
from distillab.modules.callbacks import PlainProgress, TrainClock
from distillab.modules.reliability import GracefulStop, RngState
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.console import log, quiet_known_noise
from distillab.utils.io import atomic_write_json
from distillab.utils.run_info import save_run_info
from distillab.utils.runtime import keep_freed_memory

# what a job does, by the module of the job function that calls start_run
VERBS = {
    "distillab.jobs.train": "training",
    "distillab.jobs.distill": "distilling",
}


def announce(cfg: DictConfig, what: str) -> None:
    """The plan line: `distillab: student: training Seq2Seq, 600 steps on cpu -> <run_dir>`."""
    t = cfg.trainer
    steps = f"{t.max_steps} steps" if t.max_steps and t.max_steps > 0 else f"{t.max_epochs} epochs"
    model = str(cfg.model.get("_target_", "?")).rsplit(".", 1)[-1]
    log.info(
        f"distillab: {cfg.experiment_name}: {what} {model}, {steps} on {t.accelerator}"
        f" -> {cfg.paths.output_dir}"
    )


def start_run(cfg: DictConfig, what: str | None = None) -> tuple[Path, DialogueDataModule]:
    """Announce the job (`what` it does: by default from the calling job's module), seed, set
    threads and the allocator, read and tokenise the data (errors surface here, before
    training)."""
    quiet_known_noise()
    if what is None:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        what = VERBS.get(caller, "running")
    announce(cfg, what)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    keep_freed_memory()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    # batches carry whole conversations only where task heads read them
    dm = instantiate(cfg.data, conversation_bag=bool(cfg.task.get("conversation_bag")))
    dm.load()
    return run_dir, dm


def save_run(cfg: DictConfig, dm: DialogueDataModule, run_dir: Path) -> None:
    if not is_rank_zero():  # DDP: rank 0 writes the run's files
        return
    save_run_info(run_dir, cfg, dm.describe())
    dm.tokenizer.save_pretrained(str(run_dir / "tokenizer"))


def module_kwargs(cfg: DictConfig, dm: DialogueDataModule) -> dict[str, Any]:
    """The model being trained (`model`, `module`, `optimizer`, `scheduler`, `decoding`, the
    task's heads) wired to the data's vocabulary and labels."""
    kwargs = OmegaConf.to_container(cfg.module, resolve=True)
    num_topics, rating_head = task_heads(cfg, dm)
    rating_loss = cfg.task.get("rating_loss")  # the gold rating term (`_target_`)
    rating_loss = OmegaConf.to_container(rating_loss) if rating_loss is not None else None
    kwargs.update(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        topic_weight=float(cfg.task.topic_weight),
        rating_weight=float(cfg.task.rating_weight),
        vocab_size=len(dm.tokenizer),
        pad_id=dm.pad_id,
        bos_id=dm.bos_id,
        eos_id=dm.eos_id,
        num_topics=num_topics,
        rating_head=rating_head,
        conversation_bag=bool(cfg.task.get("conversation_bag")) and (num_topics > 0 or rating_head),
        rating_loss=rating_loss if rating_head else None,
        data_fingerprint=dm.fingerprint,
        vocab_hash=dm.vocab_hash,
    )
    kwargs["decoding"] = OmegaConf.to_container(cfg.decoding, resolve=True)
    if cfg.get("weighting") is not None:
        kwargs["weighting"] = OmegaConf.to_container(cfg.weighting, resolve=True)
    return kwargs


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
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
    """Under SLURM, Lightning's SLURM environment without its own requeue (a SIGUSR1 handler
    that saves an `hpc_ckpt` and calls `scontrol requeue`): submitit requeues the job, after
    `GracefulStop` saved `last.ckpt` on its notice. Nothing when `trainer.plugins` is set."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    if cfg.trainer.get("plugins") is not None or not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=False)]}


def evaluate(trainer: pl.Trainer, module: Seq2SeqModule, dm, ckpt: str | None = None) -> dict:
    """Validation and test metrics (without the losses) of `module`, or of `ckpt` loaded into it."""
    val = trainer.validate(module, datamodule=dm, ckpt_path=ckpt, verbose=False)[0]
    test = trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False)[0]
    return {k: float(v) for k, v in {**val, **test}.items() if not k.endswith("/loss")}


@dataclass
class JobResult:
    """What a job hands back to its caller (the CLI, a sweep, the quickstart)."""

    metrics: dict[str, float]
    run_dir: Path
    checkpoint: str | None = None  # the best checkpoint by val/ppl, else the last one


def fit_and_evaluate(
    cfg: DictConfig, dm: DialogueDataModule, module: Seq2SeqModule, run_dir: Path
) -> JobResult:
    """Train, evaluate the best checkpoint (or the final weights), write metrics.json."""
    clock = TrainClock()
    last = run_dir / LAST
    callbacks = [clock, GracefulStop(last), RngState(), *compress.training_callbacks(cfg)]
    trainer = build_trainer(cfg, run_dir, callbacks)
    trainer.fit(module, datamodule=dm, ckpt_path=resume_checkpoint(cfg, run_dir))
    if not trainer.strategy.broadcast(last.exists()):  # the same answer on every rank
        trainer.save_checkpoint(last)
    cb = trainer.checkpoint_callback
    best = cb.best_model_path if cb is not None and cb.best_model_path else None
    metrics = evaluate(trainer, module, dm, best)
    metrics.update(
        {
            "model/params": sum(p.numel() for p in module.model.parameters()),
            "trainer/global_step": trainer.global_step,
            "time/train_s": round(clock.train_s, 3),
            "throughput/train_tokens_per_s": round(clock.tokens_per_s, 1),
        }
    )
    if trainer.is_global_zero:
        atomic_write_json(run_dir / "metrics.json", metrics)
        atomic_write_json(run_dir / "checkpoint.json", {"best": best, "last": str(last)})
    close_loggers(trainer)
    if compress.enabled(cfg) and trainer.is_global_zero:  # compression.json beside metrics.json
        compress.compress_checkpoint(cfg, dm, module, best or str(last), metrics)
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
