"""Read the jobs of a sweep directory from their own files: `.hydra/overrides.yaml`,
`metrics.json`, `compression.json`, `comparison.json` (quickstart jobs), `status.json`,
`reused.json` (a sweep run again reused the job's finished result) and `stale.json` (it found
a finished run of another config there: reported `stale`, without its figures).

Nothing is assumed about how the sweep ended: a job that failed, was killed or is still running
(no `metrics.json`) is still a job of the report, with its status and error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillab.utils.metric_names import COMPRESSION as COMPRESSION_PREFIX
from distillab.utils.status import REUSED_FILE, STALE_FILE, read_status

DEPLOYED = COMPRESSION_PREFIX + "metrics_after/"  # quality of the compressed model, as shipped
FINISHED, FAILED, INCOMPLETE, STALE = "finished", "failed", "incomplete", "stale"


@dataclass
class Job:
    dir: Path
    overrides: dict[str, str]  # the job's own command-line overrides (what the sweep varied)
    figures: dict[str, float] = field(default_factory=dict)  # metrics + compression/<key>
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> metrics
    status: str = INCOMPLETE
    error: str | None = None
    optimized_metric: Any = None  # the job's config value (a name, a list of names, or None)
    reused: bool = False  # a sweep run again took this finished job's result as it was

    @property
    def name(self) -> str:
        return self.dir.name


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is absent or half-written."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def scalars(d: Any, prefix: str = "", depth: int = 0) -> dict[str, float]:
    """The finite numbers of a JSON object, keys prefixed; objects nested `depth` levels deep
    too, as `<key>/<inner key>` (compression.json's `metrics_after`: the deployed model's)."""
    out = {}
    for k, v in (d or {}).items() if isinstance(d, dict) else ():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[prefix + k] = float(v)
        elif isinstance(v, dict) and depth > 0:
            out.update(scalars(v, f"{prefix}{k}/", depth - 1))
    return out


def figures(run_dir: str | Path, metrics: dict | None = None) -> dict[str, float]:
    """A run's figures by name: its metrics (given, or read from metrics.json) and its
    compression figures as `compression/<key>` (compression.json, when present)."""
    run_dir = Path(run_dir)
    if metrics is None:
        metrics = read_json(run_dir / "metrics.json")
    out = scalars(metrics)
    out.update(scalars(read_json(run_dir / "compression.json"), COMPRESSION_PREFIX, depth=1))
    return out


def parse_overrides(path: Path) -> dict[str, str]:
    try:
        lines = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError):
        return {}
    out = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        if sep and not key.startswith("hydra."):
            out[key.lstrip("+~")] = value
    return out


def natural(value: str) -> tuple:
    """Numbers by value, before text: `2` before `10`."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def job_order(job: Job) -> tuple:
    """Jobs numbered by position (older sweeps) by number; jobs named by their overrides by
    those overrides' values, key by key (a grid in its natural order: seeds 1, 2, 3)."""
    name = job.dir.name
    if name.isdigit():
        return (0, int(name), ())
    return (1, 0, tuple((k, natural(v)) for k, v in sorted(job.overrides.items())), name)


def read_job(job_dir: Path) -> Job:
    job = Job(job_dir, parse_overrides(job_dir / ".hydra" / "overrides.yaml"))
    metrics = read_json(job_dir / "metrics.json")
    job.figures = figures(job_dir, metrics if isinstance(metrics, dict) else {})
    comparison = read_json(job_dir / "comparison.json")
    if isinstance(comparison, dict):
        job.comparison = {role: scalars(m) for role, m in comparison.items()}
    recorded = read_status(job_dir) or {}
    job.status = recorded.get("state") or (FINISHED if metrics is not None else INCOMPLETE)
    if job.status == FINISHED and metrics is None and not job.comparison:
        job.status = INCOMPLETE  # said finished, but its results are not there
    job.error = recorded.get("error")
    job.reused = job.status == FINISHED and (job_dir / REUSED_FILE).is_file()
    stale = read_json(job_dir / STALE_FILE)
    if job.status == FINISHED and isinstance(stale, dict):  # not this sweep's config
        job.status, job.figures, job.comparison = STALE, {}, {}
        job.error = (
            f"holds a finished run of another config ({'; '.join(stale.get('changes', []))}): "
            "run this sweep into a new directory"
        )
    try:
        config = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text()) or {}
        job.optimized_metric = config.get("optimized_metric")
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    return job


def collect(sweep_dir: str | Path) -> list[Job]:
    """Every job directory under `sweep_dir` (one holding `.hydra/overrides.yaml`), in job
    order."""
    sweep_dir = Path(sweep_dir)
    dirs = {p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")}
    dirs.discard(sweep_dir)
    return sorted((read_job(d) for d in dirs), key=job_order)
