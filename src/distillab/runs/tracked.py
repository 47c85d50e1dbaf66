"""A job run with its `status.json` kept up to date: an interruption records how to resume and
exits with 128+signal (handing a preemption notice on to submitit), an unwritable output
becomes one line (see `distillab.runs`)."""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from distillab.errors import DistillabError
from distillab.modules import reliability
from distillab.modules.reliability import Preempted, exit_code
from distillab.runs.liveness import heartbeat, whoami
from distillab.runs.state import LAST
from distillab.utils import status
from distillab.utils.console import CurrentStreamHandler, log
from distillab.utils.ranks import is_rank_zero

# errors that mean "the output cannot be written", turned into one clear line
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class OutputError(DistillabError):
    """The run's output cannot be written (disk full, read-only, no permission)."""


class NotRequeued(DistillabError):
    """Submitit did not requeue an interrupted job (`max_num_timeout` reached): it stays
    `interrupted`, to be continued by running the sweep again."""


def write_status(run_dir: Path, state: str, **extra: Any) -> None:
    if is_rank_zero():
        status.write_status(run_dir, state, **extra)


def run_tracked(cfg: DictConfig, run: Callable[[DictConfig], dict]) -> dict:
    """Run the job with `status.json` kept up to date; an interruption by SIGTERM/SIGINT exits
    with 128+signal after saying how to resume; an unwritable output becomes one line."""
    run_dir = Path(cfg.paths.output_dir)
    quiet_other_ranks()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    resumed = bool(cfg.get("resume"))
    write_status(run_dir, "running", started=started, resumed=resumed, **whoami())
    beating = heartbeat(run_dir) if is_rank_zero() else contextlib.nullcontext()
    with reliability.preemption_notice(), beating:
        return _run_recorded(cfg, run, run_dir)


def _run_recorded(cfg: DictConfig, run: Callable[[DictConfig], dict], run_dir: Path) -> dict:
    try:
        metrics = run(cfg)
    except (SIGTERMException, KeyboardInterrupt, Preempted) as e:
        name = "SIGINT" if isinstance(e, KeyboardInterrupt) else reliability.last_signal
        name = name or "SIGTERM"
        if (run_dir / LAST).is_file():
            how = f"resume with: distillab-train resume={run_dir} (a requeued job resumes itself)"
        else:
            how = "no checkpoint of this run yet: run the same command again"
        write_status(run_dir, "interrupted", signal=name, resume=how)
        log.warning(f"distillab: interrupted ({name}); {how}")
        if name == reliability.preempt_signal().name:
            try:
                reliability.hand_over()  # submitit: requeues and exits (rank 0); else returns
            except Exception as refused:  # noqa: BLE001 - submitit's: timed out too many times
                why = status.error_line(refused)
                write_status(run_dir, "interrupted", signal=name, resume=how, not_requeued=why)
                log.warning(f"distillab: not requeued ({why}); run the sweep again to continue")
                raise NotRequeued(why) from refused
        sys.exit(exit_code(name))
    except OSError as e:
        write_status(run_dir, "failed", error=str(e))
        if e.errno in OUTPUT_ERRNOS:
            raise OutputError(
                f"cannot write {e.filename or 'the output'}: {e.strerror} (disk full or output "
                "not writable); metrics.json is written atomically, so none was left half-written"
            ) from e
        raise
    except BaseException as e:
        write_status(run_dir, "failed", error=f"{type(e).__name__}: {e}")
        raise
    write_status(run_dir, "finished", metrics_file=str(run_dir / "metrics.json"))
    return metrics


def quiet_other_ranks() -> None:
    """DDP ranks > 0 keep their own log file (`train_ddp_process_<rank>.log`) and warnings on
    stderr; the console's progress lines are rank 0's."""
    if is_rank_zero():
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, CurrentStreamHandler) and handler.to == "stdout":
            root.removeHandler(handler)
