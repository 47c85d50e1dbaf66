"""`<run_dir>/status.json`: whether a job is running, finished, failed or was interrupted.

One small file, written atomically: `state` (running | finished | failed | interrupted), `updated`
(UTC time) and what goes with the state (`error` a one-line message, `signal` and `resume` how
to continue, `started`, `resumed`, `metrics_file`). Sweep reports read it (distillab.report), so
a failed job shows up with its error instead of stopping the report; a job directory without it
and without `metrics.json` is reported as incomplete (killed, or still running).
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distillab.utils.io import atomic_write_json

STATUS_FILE = "status.json"
# in a sweep run again, a job that reused its finished run's result says so here (the report's
# `reused` column); status.json stays as the run wrote it
REUSED_FILE = "reused.json"
# in a sweep run again, a job whose directory holds a finished run of another config (a
# default changed since) says so here: the report lists it as `stale`, the sweep exits 1;
# the run's own files stay as they are
STALE_FILE = "stale.json"
STATUSES = ("running", "finished", "failed", "interrupted")
STALE_S = 60.0  # a `running` status.json untouched this long belongs to no live run


def write_status(run_dir: str | Path, state: str, **extra: Any) -> None:
    """Record `state`; a final state keeps what `running` recorded (start time, resumed)."""
    if state not in STATUSES:
        raise ValueError(f"state={state!r} must be one of {STATUSES}")
    path = Path(run_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"state": state, "updated": now, **extra}
    if path.is_file() and state != "running":
        record = {**(read_status(run_dir) or {}), **record}
    atomic_write_json(path, record)


def alive(run_dir: str | Path, record: dict) -> bool:
    """A run recorded `running` is alive while its heartbeat is fresh (rank 0 of a running job
    touches status.json every few seconds: distillab.runs.liveness); on this host, its process
    must exist too (a process killed here is known lost at once)."""
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        pid = record["pid"]
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
    try:
        return time.time() - (Path(run_dir) / STATUS_FILE).stat().st_mtime < STALE_S
    except OSError:
        return False


def read_status(run_dir: str | Path) -> dict | None:
    """The recorded status, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def error_line(e: BaseException) -> str:
    """`Type: message`, on one line (a report table cell)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
