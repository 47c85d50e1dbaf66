"""`<run_dir>/status.json`: whether a job is running, finished, failed or was interrupted.

One small file with two keys, `status` (running | finished | failed | interrupted) and `error`
(a one-line message, or null), written atomically. Sweep reports read it (distillab.report), so
a failed job shows up with its error instead of stopping the report; a job directory without it
and without `metrics.json` is reported as incomplete (killed, or still running).
"""

from __future__ import annotations

import json
from pathlib import Path

from distillab.utils.io import atomic_write_json

STATUS_FILE = "status.json"
STATUSES = ("running", "finished", "failed", "interrupted")


def write_status(run_dir: str | Path, status: str, error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"status={status!r} must be one of {STATUSES}")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(run_dir) / STATUS_FILE, {"status": status, "error": error})


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
