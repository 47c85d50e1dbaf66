"""Gradual pruning during training (or a fine-tuning phase) as a Lightning callback."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from distillab.compress.pruning import MagnitudePruning, fold, fold_state_dict
from distillab.compress.schedule import cubic_sparsity


class GradualPruning(pl.Callback):
    """Masks the module's model to the cubic schedule's sparsity every ``frequency`` steps
    from ``start_step`` to ``end_step`` (``start_step == end_step``: one step to ``sparsity``,
    then fixed masks, as in a fine-tuning phase).

    Checkpoints hold plain weights (masks folded in, pruned weights zero), so every loader of
    distillab checkpoints reads them; the masks are folded into the model when training ends.
    """

    def __init__(
        self,
        pruner: MagnitudePruning,
        sparsity: float,
        start_step: int = 0,
        end_step: int = 0,
        frequency: int = 1,
    ) -> None:
        self.pruner, self.sparsity = pruner, sparsity
        self.start_step, self.end_step, self.frequency = start_step, end_step, max(frequency, 1)
        self.current: float | None = None

    def target(self, step: int) -> float:
        return cubic_sparsity(step, self.sparsity, self.start_step, self.end_step)

    def update(self, pl_module: pl.LightningModule, step: int) -> None:
        due = step >= self.end_step or (step - self.start_step) % self.frequency == 0
        value = self.target(step)
        if self.current is None or (due and value != self.current):
            self.pruner.prune(pl_module.model, value)
            self.current = value

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.current = None
        self.update(pl_module, trainer.global_step)  # masks from the start: stable parameters

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step >= self.start_step:
            self.update(pl_module, step)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        checkpoint["state_dict"] = fold_state_dict(checkpoint["state_dict"])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fold(pl_module.model)
        self.current = None
