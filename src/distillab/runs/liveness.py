"""Whether the run recorded `running` in a run directory is still going: rank 0 of a running
job records its host and process id in `status.json` and touches the file every HEARTBEAT_S
seconds. A job that finds its directory `running` when it starts (a sweep run again while the
jobs of its first launch go on, their launcher killed; a job whose process or node was lost)
waits for a live run to end, and records a lost one `interrupted`, so that it continues from
its last checkpoint (see `distillab.runs`)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from distillab.runs.state import LAST, STATUS
from distillab.utils.console import log
from distillab.utils.status import alive, read_status, write_status

HEARTBEAT_S = 10.0  # how often a running job touches its status.json (STALE_S: 60 s)
POLL_S = 2.0


def whoami() -> dict:
    """What a running record says about its process: host and pid."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def settle(run_dir: Path, wait: bool) -> None:
    """Before a job uses its run directory: while another process runs it there, wait for it
    to end (`wait`, in a sweep; a single run is refused instead); a `running` record whose
    process is gone becomes `interrupted` (the job then continues it)."""
    said = False
    while (record := read_status(run_dir) or {}).get("state") == "running":
        if not alive(run_dir, record):
            how = (
                "continued from its last checkpoint" if (run_dir / LAST).is_file() else "run again"
            )
            log.warning(f"distillab: {run_dir} was left running by a lost process: {how}")
            write_status(run_dir, "interrupted", signal="lost", resume=f"lost; {how}")
            return
        if not wait:
            return
        if not said:
            log.info(
                f"distillab: {run_dir} is being run by another process ({record.get('host')}, "
                f"pid {record.get('pid')}): waiting for it to end"
            )
            said = True
        time.sleep(POLL_S)


@contextlib.contextmanager
def heartbeat(run_dir: Path) -> Iterator[None]:
    """Touch `run_dir/status.json` every HEARTBEAT_S seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(run_dir / STATUS)

    thread = threading.Thread(target=beat, name="distillab-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
