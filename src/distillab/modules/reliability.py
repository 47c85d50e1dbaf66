"""Training that survives preemption and fails clearly: graceful stop on SIGTERM/SIGINT and on
a cluster's preemption notice (SIGUSR2) with a resumable last checkpoint, checkpoints written
whole or not at all, RNG states in checkpoints (the non-finite loss guard: `modules.finite`).

Lightning's Trainer handles SIGTERM itself (a documented behaviour, `Trainer.received_sigterm`):
it stops at the next batch boundary with `SIGTERMException` (all DDP ranks together: rank 0
broadcasts it) and calls the callbacks' `on_exception`. `GracefulStop` routes SIGINT (Ctrl+C)
and the preemption notice the same way: its own handlers (installed with `signal.signal`,
the previous ones restored after `fit`) record which signal came and deliver SIGTERM to this
process once the Trainer's handler is in place (from `on_sanity_check_start`/`on_train_start`;
a notice that comes earlier waits until then). So all stop between batches, never inside an
optimiser step, and save `checkpoints/last.ckpt` then. Nothing else is saved on other errors:
after a non-finite loss the last good checkpoint stays as it was.

The preemption notice is submitit's: SIGUSR2 (or `$SUBMITIT_PREEMPT_SIGNAL`) `signal_delay_s`
before the time limit, or on preemption. submitit's own handler requeues the job and exits at
once, wherever the job is; `preemption_notice` (around the whole job) and `GracefulStop` (during
`fit`) take the signal first, and the job hands it on to submitit's handler (`hand_over`) once
the checkpoint and the status are written. The requeued job finds its run directory interrupted
and resumes (distillab.runs). Lightning's own SLURM requeue (SIGUSR1) stays off
(`SLURMEnvironment(auto_requeue=False)`).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger("distillab")
last_signal: str | None = None  # the signal that stopped the job (for the status and exit code)
_handover: Callable | None = None  # the preemption handler installed before ours (submitit's)
PREVIOUS_LAST = "last.prev.ckpt"  # the last checkpoint a new one replaced (SafeCheckpointIO)


def preempt_signal() -> signal.Signals:
    """The notice a cluster job gets before its time limit or on preemption: submitit's signal,
    USR2 unless `$SUBMITIT_PREEMPT_SIGNAL` names another (as submitit reads it)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", signal.SIGUSR2)


class Preempted(BaseException):
    """The preemption notice arrived outside training (data, caches, evaluation): the job
    unwinds like Ctrl+C (a BaseException, so no `except Exception` swallows it)."""


@contextmanager
def preemption_notice() -> Iterator[None]:
    """Around a whole job: the preemption notice raises `Preempted` instead of running
    submitit's handler (which requeues and exits at once, before anything is recorded); the
    job runner records the interruption, then calls `hand_over`. Main thread only."""
    global _handover, last_signal
    last_signal = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sig = preempt_signal()
    _handover = signal.getsignal(sig)

    def notice(signum, frame) -> None:
        global last_signal
        last_signal = signal.Signals(signum).name
        raise Preempted(last_signal)

    signal.signal(sig, notice)
    try:
        yield
    finally:
        signal.signal(sig, _handover if _handover is not None else signal.SIG_DFL)


def hand_over() -> None:
    """Pass the preemption notice on to the handler that was there before (submitit's: it
    requeues the job, or records why not, and exits; on DDP ranks > 0 it returns)."""
    if callable(_handover):
        log.warning(f"distillab: passing {preempt_signal().name} on to {_handover.__qualname__}")
        _handover(int(preempt_signal()), None)


class GracefulStop(pl.Callback):
    """SIGTERM, SIGINT or the preemption notice (SIGUSR2) during `fit`: finish the current
    batch, save `ckpt_path` (weights, optimiser, scheduler, loop, sampler position, RNG states)
    and let the exception reach the job runner, which records the run as interrupted and says
    how to resume (after a preemption notice it hands over to submitit, which requeues the job).
    A second SIGINT interrupts at once."""

    def __init__(self, ckpt_path: str | Path) -> None:
        self.ckpt_path = Path(ckpt_path)
        self.signal: str | None = None
        self._previous: dict[int, object] = {}
        self._armed = False  # the Trainer's SIGTERM handler is in place (its run has begun)
        self._pending = False  # a stop asked for before that: delivered once armed

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        self.signal, self._armed, self._pending = None, False, False
        for sig, handler in ((signal.SIGINT, self._on_sigint), (preempt_signal(), self._on_stop)):
            self._previous[sig] = signal.signal(sig, handler)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._restore()

    def _restore(self) -> None:
        self._armed = False
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _arm(self) -> None:
        """The Trainer registers its SIGTERM handler after the setup hooks, just before its
        run (sanity check, then training): from here a stop can be handed to it."""
        if not self._previous or self._armed:
            return
        self._armed = True
        if self._pending:
            self._pending = False
            signal.raise_signal(signal.SIGTERM)

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._arm()

    def _on_sigint(self, signum, frame) -> None:
        if self.signal == "SIGINT":
            raise KeyboardInterrupt
        self._on_stop(signum, frame)

    def _on_stop(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name
        again = " (again to stop now)" if signum == signal.SIGINT else ""
        log.warning(f"distillab: {self.signal}: stopping after this batch{again}")
        if self._armed:  # the Trainer's graceful stop (its SIGTERM handler), as for SIGTERM
            signal.raise_signal(signal.SIGTERM)
        else:
            self._pending = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._arm()
        if trainer.ckpt_path:
            log.info(f"distillab: continuing from step {trainer.global_step} ({trainer.ckpt_path})")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()  # Lightning calls no teardown hook after an exception
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


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written whole or not at all: into a temporary file beside the target, synced,
    then renamed over it (a kill, a crash or a full disk never leaves a truncated checkpoint;
    Lightning's own save stages in the system's temp dir and copies across devices). The
    `last.ckpt` a save replaces is kept as `last.prev.ckpt`: an intact earlier state to resume
    from should the new one be damaged later. Paths with a protocol (`s3://`) go to Lightning."""

    def save_checkpoint(
        self, checkpoint: dict, path: str | Path, storage_options: object | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.partial")
        try:
            with part.open("wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            if path.name == f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}.ckpt" and path.is_file():
                os.replace(path, path.with_name(PREVIOUS_LAST))
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)


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
    """128 + the signal number, the shell's convention for a process stopped by a signal
    (SIGTERM when unnamed)."""
    number = getattr(signal, signal_name or "SIGTERM", signal.SIGTERM)
    return 128 + int(number)


__all__ = [
    "GracefulStop",
    "Preempted",
    "RngState",
    "SafeCheckpointIO",
    "exit_code",
    "hand_over",
    "preempt_signal",
    "preemption_notice",
]
