"""Training that survives preemption and fails clearly: graceful stop on SIGTERM/SIGINT with a
resumable last checkpoint, RNG states in checkpoints, and a guard against non-finite losses.

Lightning's own signal connector turns SIGTERM into `SIGTERMException` at the next batch
boundary (all DDP ranks together: rank 0 broadcasts it) and calls the callbacks' `on_exception`;
`GracefulStop` routes SIGINT (Ctrl+C) the same way, so both stop between batches, never inside
an optimiser step, and saves `checkpoints/last.ckpt` then. Nothing else is saved on other
errors: after a non-finite loss the last good checkpoint stays as it was.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor

from distillab.errors import DistillabError

log = logging.getLogger("distillab")
last_signal: str | None = None  # the signal that stopped the latest fit (for the exit code)


class NonFiniteLossError(DistillabError):
    """A training loss became NaN or inf: the run stops instead of training on garbage."""


def check_finite(loss: Tensor, values: dict[str, Tensor], step: int) -> None:
    """Raise `NonFiniteLossError` naming the step and the (unweighted) terms that are not
    finite. One host sync per step; a NaN is caught before it reaches the weights."""
    if bool(torch.isfinite(loss.detach()).all()):
        return
    bad = {k: float(v.detach()) for k, v in values.items() if not torch.isfinite(v).all()}
    terms = ", ".join(f"{k}={v}" for k, v in bad.items()) or "the weighted sum only"
    raise NonFiniteLossError(
        f"non-finite training loss at step {step} (loss={float(loss.detach())}; "
        f"non-finite terms: {terms}); stopped without saving, the last good checkpoint is kept "
        "(trainer.detect_anomaly=true finds the operation that produced it)"
    )


class GracefulStop(pl.Callback):
    """SIGTERM or SIGINT during `fit`: finish the current batch, save `ckpt_path` (weights,
    optimiser, scheduler, loop, sampler position, RNG states) and let the exception reach the
    job runner, which records the run as interrupted and says how to resume. A second SIGINT
    interrupts at once."""

    def __init__(self, ckpt_path: str | Path) -> None:
        self.ckpt_path = Path(ckpt_path)
        self.signal: str | None = None
        self._previous = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _on_sigint(self, signum, frame) -> None:
        if self.signal == "SIGINT":
            raise KeyboardInterrupt
        self.signal = "SIGINT"
        log.warning("distillab: SIGINT: stopping after this batch (again to stop now)")
        self._trainer._signal_connector.received_sigterm = True  # Lightning's stop flag

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        global last_signal
        self.signal = last_signal = self.signal or "SIGTERM"
        self._adopt_as_last(trainer)
        trainer.save_checkpoint(self.ckpt_path)  # collective in DDP; rank 0 writes
        log.warning(
            f"distillab: {self.signal} at step {trainer.global_step}: saved {self.ckpt_path}"
        )

    def _adopt_as_last(self, trainer: pl.Trainer) -> None:
        """Make a `ModelCheckpoint(save_last=True)` writing to the same file treat it as its
        own last checkpoint (recorded in the checkpoint's callback state): otherwise, resumed
        before it saved one itself, it would keep ours and write `last-v1.ckpt` beside it."""
        for cb in trainer.checkpoint_callbacks:
            if not (isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath):
                continue
            same_dir = Path(cb.dirpath).resolve() == self.ckpt_path.parent.resolve()
            if same_dir and self.ckpt_path.stem == cb.CHECKPOINT_NAME_LAST:
                cb.last_model_path = os.path.join(cb.dirpath, self.ckpt_path.name)


class RngState(pl.Callback):
    """Python, NumPy and torch RNG states in every checkpoint, restored on resume, so dropout
    and augmentation continue their streams instead of replaying them from the seed. Stored
    as tensors and plain lists: checkpoints stay loadable with `weights_only=True`."""

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, state, gauss_next = random.getstate()
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": [version, list(state), gauss_next],
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"rng": rng}

    def load_state_dict(self, state_dict: dict) -> None:
        rng = state_dict.get("rng")
        if not rng:
            return
        torch.set_rng_state(rng["torch"])
        kind, keys, pos, has_gauss, gauss = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, state, gauss_next = rng["python"]
        random.setstate((version, tuple(state), gauss_next))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


def exit_code(signal_name: str | None) -> int:
    """128 + the signal number, the shell's convention for a process stopped by a signal."""
    number = signal.SIGINT if signal_name == "SIGINT" else signal.SIGTERM
    return 128 + int(number)


__all__ = [
    "GracefulStop",
    "NonFiniteLossError",
    "RngState",
    "check_finite",
    "exit_code",
]
