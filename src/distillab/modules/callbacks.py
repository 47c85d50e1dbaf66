"""Callbacks the training job always uses: a training clock and plain progress log lines."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn

log = logging.getLogger("distillab")


class TrainClock(pl.Callback):
    """Training wall time and target tokens/s, excluding validation (no host syncs: counts
    come from the batch's Python-int `n_tokens`)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.train_s = 0.0
        self._t0: float | None = None

    def _start(self) -> None:
        self._t0 = time.perf_counter()

    def _stop(self) -> None:
        if self._t0 is not None:
            self.train_s += time.perf_counter() - self._t0
            self._t0 = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tokens += batch.n_tokens

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.training:
            self._stop()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.training:
            self._start()

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop()

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_s if self.train_s > 0 else 0.0


class PlainProgress(pl.Callback):
    """Progress and validation figures as log lines (the `distillab` logger): the console and
    the run's log file when stdout is not a terminal (logs, SLURM, CI); with `console=False`
    (a terminal, where a progress bar shows them) the training lines go to the log file only.

    One training line every `every_n_steps` steps and at the last, one line per validation
    during training, and one line each for the final validation and test evaluations."""

    def __init__(self, every_n_steps: int = 50, console: bool = True) -> None:
        self.every = every_n_steps
        self.extra = {} if console else {"console": False}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            loss = trainer.callback_metrics.get("train/loss")
            loss_s = f"{float(loss):.4f}" if loss is not None else "-"
            log.info(
                f"epoch {trainer.current_epoch} step {step} train: loss {loss_s}", extra=self.extra
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == TrainerFn.FITTING:
            where = f"epoch {trainer.current_epoch} step {trainer.global_step}"
        else:
            where = f"evaluation of {evaluated(trainer)}"
        log.info(f"{where} {figures(trainer.callback_metrics, 'val/')}")

    def on_test_end(self, trainer, pl_module) -> None:
        log.info(f"evaluation of {evaluated(trainer)} {figures(trainer.callback_metrics, 'test/')}")


def evaluated(trainer: pl.Trainer) -> str:
    """What `trainer.validate/test` evaluated: a checkpoint, or the module's weights as they are."""
    ckpt = trainer.ckpt_path
    return f"{Path(ckpt).parent.name}/{Path(ckpt).name}" if ckpt else "the current weights"


def figures(metrics: dict, prefix: str) -> str:
    """`prefix` metrics (losses left out), perplexity first: 'val: ppl 261.8 bleu 0.0012'."""
    keys = sorted(
        (k for k in metrics if k.startswith(prefix) and not k.endswith("/loss")),
        key=lambda k: (not k.endswith("/ppl"), k),
    )
    shown = " ".join(f"{k[len(prefix) :]} {float(metrics[k]):.4g}" for k in keys)
    return f"{prefix.rstrip('/')}: {shown or '-'}"
