"""A run directory's set-up: the plan line, seeds and threads, and the record a run saves
beside its results (resolved config, versions, data fingerprint, tokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from distillab.data.datamodule import DialogueDataModule
from distillab.utils.console import log, quiet_known_noise
from distillab.utils.ranks import is_rank_zero
from distillab.utils.run_info import save_run_info
from distillab.utils.runtime import keep_freed_memory


def announce(cfg: DictConfig, what: str) -> None:
    """The plan line: `distillab: student: training Seq2Seq, 600 steps on cpu -> <run_dir>`."""
    t = cfg.trainer
    steps = f"{t.max_steps} steps" if t.max_steps and t.max_steps > 0 else f"{t.max_epochs} epochs"
    model = str(cfg.model.get("_target_", "?")).rsplit(".", 1)[-1]
    log.info(
        f"distillab: {cfg.experiment_name}: {what} {model}, {steps} on {t.accelerator}"
        f" -> {cfg.paths.output_dir}"
    )


def prepare(cfg: DictConfig, what: str) -> Path:
    """Announce the run, create its directory, seed, set threads and the allocator."""
    quiet_known_noise()
    announce(cfg, what)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed(cfg)
    keep_freed_memory()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    return run_dir


def seed(cfg: DictConfig) -> None:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)


def save_run(cfg: DictConfig, dm: DialogueDataModule, run_dir: Path) -> None:
    """What reproduces the run: its resolved config, versions, data description, tokenizer."""
    if not is_rank_zero():  # DDP: rank 0 writes the run's files
        return
    save_run_info(run_dir, cfg, dm.describe())
    dm.tokenizer.save_pretrained(str(run_dir / "tokenizer"))
