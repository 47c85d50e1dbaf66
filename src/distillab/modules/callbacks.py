"""Callbacks the training job always uses: a training clock and plain progress logs."""

from __future__ import annotations

import sys
import time

import pytorch_lightning as pl


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
        self.tokens += batch["n_tokens"]

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
    """One line every `every_n_steps` when stdout is not a terminal (logs, SLURM, CI)."""

    def __init__(self, every_n_steps: int = 50) -> None:
        self.every = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            loss = trainer.callback_metrics.get("train/loss")
            loss_s = f"{float(loss):.4f}" if loss is not None else "-"
            print(f"epoch {trainer.current_epoch} step {step} train/loss {loss_s}", file=sys.stdout)

    def on_validation_end(self, trainer, pl_module) -> None:
        ppl = trainer.callback_metrics.get("val/ppl")
        if ppl is not None and not trainer.sanity_checking:
            print(
                f"epoch {trainer.current_epoch} step {trainer.global_step} val/ppl {float(ppl):.2f}"
            )
