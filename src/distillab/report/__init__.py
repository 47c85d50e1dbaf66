"""Sweep reports: read every job of a multirun directory and write `summary.csv`, `report.md`
and PNG plots into it (`distillab-compare SWEEP_DIR`, and automatically when a multirun ends:
`distillab.report.callback.SweepReport`, configured in conf/hydra/default.yaml).

collect.py reads the jobs' own files, summarise.py turns them into tables (best config, mean
+- std over seeds, distilled vs scratch), plots.py draws the figures, write.py puts them in the
sweep directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_report(sweep_dir: str | Path, metric: str | None = None) -> Any:
    """`distillab.report.write.write_report`, imported on call: matplotlib stays out of every
    job's start (the callback and the job's objective import this package)."""
    from distillab.report.write import write_report as write

    return write(sweep_dir, metric)


__all__ = ["write_report"]
