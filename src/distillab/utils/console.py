"""What a run prints: its plan, progress, validation figures and where its results are.

Everything a run reports goes through the `distillab` logger (`log`). Under the Hydra app
(`distillab-train`), Hydra's job logging (distillab/conf/hydra/default.yaml) sends INFO lines
to stdout as bare messages, warnings and errors to stderr, and all of it, with timestamps, to
`<run_dir>/<job name>.log` (`train.log`). Python warnings join that stream
(`logging.captureWarnings`), so the log file holds them too.

`quiet_known_noise()` silences, in one place, what the libraries print on every run that says
nothing about *this* run. Each entry names why it is noise; anything else, in particular every
warning not listed here, still shows.

Python warnings (`NOISY_WARNINGS`, matched on the start of their message):

- "`isinstance(treespec, LeafSpec)` is deprecated": a FutureWarning torch raises inside
  Lightning's own batch-size probe (pytorch_lightning/utilities/_pytree.py); it is Lightning's
  to fix, nothing in a run can change it.
- "The '...' does not have many workers": our batches are pre-tokenised tensors in memory,
  so loader workers buy nothing (data.num_workers stays 0 on purpose).
- "The number of training batches (N) is smaller than the logging interval": fires on short
  epochs (small data, smoke runs); the progress lines report the training loss anyway.
- "`ModelCheckpoint(monitor=...)` could not find the monitored key": Lightning warns when the
  checkpoint callback fires before any validation has run, which is expected whenever
  validation runs less often than checkpointing (e.g. `max_steps` shorter than an epoch). It
  is not a typo check: once validation has run, a missing monitored key makes Lightning raise
  (MisconfigurationException), so a wrong `monitor` still stops the run.
- "The `srun` command is available on your system but is not used": Lightning says so on every
  run on a machine with Slurm installed. distillab runs on Slurm through its launcher
  (`hydra/launcher=slurm`: submitit starts the tasks with srun); a run started without it is
  meant to run where it was started.

Lightning info lines (`NOISY_INFO`, dropped by a filter on the loggers that emit them):

- "GPU available: ...", "TPU available: ...", "HPU available: ...", "LOCAL_RANK: ...": the
  device the run uses is in the plan line (`trainer.accelerator`); Lightning's *warning* that
  a GPU is available but unused is a warning and still shows.
- "💡 Tip: ..." (litlogger, litmodels): advertisements for Lightning's cloud services.
- "You are using a CUDA device ... that has Tensor Cores": a performance tip; the GPU trainer
  config trains in bf16-mixed already.
- "Loading `train_dataloader` to estimate number of stepping batches": an internal detail of
  the LR scheduler setup.
- "Restoring states from the checkpoint path ..." / "Loaded model weights from the
  checkpoint ...": the evaluation line says which checkpoint it evaluated.
"""

from __future__ import annotations

import logging
import sys
import warnings

log = logging.getLogger("distillab")

NOISY_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The '\w+' does not have many workers",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`ModelCheckpoint\(monitor=.*\)` could not find the monitored key",
    r"The `srun` command is available on your system but is not used",
)
NOISY_INFO = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "LOCAL_RANK:",
    "💡 Tip:",
    "You are using a CUDA device",
    "Loading `train_dataloader` to estimate number of stepping batches",
    "Restoring states from the checkpoint path",
    "Loaded model weights from the checkpoint",
)
# the loggers Lightning's info lines come from (both package layouts)
LIGHTNING_LOGGERS = tuple(
    f"{pkg}.{mod}"
    for pkg in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
    for mod in ("utilities.rank_zero", "accelerators.cuda")
)


class DropNoisyInfo(logging.Filter):
    """Drops the Lightning info lines that start with one of `NOISY_INFO`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        return not str(record.msg).lstrip().startswith(NOISY_INFO)


_DROP = DropNoisyInfo()


class SayOnce(logging.Filter):
    """Passes the first record that contains `marker`, drops the repeats: submitit polls a
    cluster without accounting every few seconds and warns each time that `sacct` failed."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker, self.said = marker, False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.marker not in record.getMessage():
            return True
        if self.said:
            return False
        self.said = True
        record.msg = f"{record.getMessage()} (said once; the sweep goes on without sacct)"
        record.args = ()
        return True


def quiet_submitit() -> None:
    """The launcher's side: submitit's sacct warning once (`Call #N - Bypassing sacct error`)."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, SayOnce) for f in logger.filters):
        logger.addFilter(SayOnce("Bypassing sacct error"))


def quiet_known_noise() -> None:
    """Silence the known noise (module docstring). Idempotent; call wherever a job starts."""
    for pattern in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _DROP not in logger.filters:
            logger.addFilter(_DROP)


def setup() -> None:
    """For the entry point: quiet the noise and route Python warnings through logging, so
    they reach the run's log file as well as stderr."""
    quiet_known_noise()
    logging.captureWarnings(True)


class ForStdout(logging.Filter):
    """The stdout handler's filter: below WARNING (those go to stderr), and not the lines
    logged with `extra={"console": False}` (progress lines a progress bar already shows)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING and getattr(record, "console", True)


class CurrentStreamHandler(logging.StreamHandler):
    """A StreamHandler on whatever `sys.stdout` / `sys.stderr` is when it writes: a terminal's
    live progress bar redirects them to print above itself, so log lines keep off its line."""

    def __init__(self, to: str = "stdout") -> None:
        if to not in ("stdout", "stderr"):
            raise ValueError(f"to={to!r}: stdout or stderr")
        self.to = to
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self.to)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it; the current one is used instead
        pass
