"""Tables of a sweep: one row per job, the jobs ranked by the optimized metric, the best config,
mean +- std over seeds (every other override held fixed) and the paired distilled vs scratch
difference of quickstart jobs."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from distillab.report.collect import FINISHED, Job

SEED = "seed"
LOWER_IS_BETTER = ("ppl", "loss", "mae", "size", "bytes", "latency", "params", "_s", "nonzero")
HIGHER_IS_BETTER = ("per_s", "gain", "retained", "agreement")  # checked first
STUDENTS = ("student_scratch", "student_distilled")


def direction(metric: str) -> str:
    """`min` for perplexity, losses, errors, sizes, latencies and times; `max` otherwise
    (accuracy, BLEU, ROUGE, distinct-n, agreement, retained quality)."""
    last = metric.rsplit("/", 1)[-1].lower()
    if any(part in last for part in HIGHER_IS_BETTER):
        return "max"
    return "min" if any(part in last for part in LOWER_IS_BETTER) else "max"


def objectives(jobs: list[Job], metric: str | None = None) -> list[str]:
    """The optimized metric(s): `metric` if given, else the jobs' `optimized_metric` (a name or
    a list of names: a multi-objective sweep), else val/ppl."""
    if metric:
        return [metric]
    for job in jobs:
        m = job.optimized_metric
        if isinstance(m, str) and m:
            return [m]
        if isinstance(m, list) and m:
            return [str(x) for x in m]
    return ["val/ppl"]


def flat_figures(job: Job) -> dict[str, float]:
    """A job's figures plus its comparison's per-model metrics as `<model>/<metric>`."""
    out = dict(job.figures)
    for role, metrics in job.comparison.items():
        out.update({f"{role}/{k}": v for k, v in metrics.items()})
    return out


def override_keys(jobs: list[Job]) -> list[str]:
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys]
    return keys


def varying_keys(jobs: list[Job]) -> list[str]:
    """The overrides whose value differs between jobs (the swept axes)."""
    return [k for k in override_keys(jobs) if len({j.overrides.get(k) for j in jobs}) > 1]


def common_overrides(jobs: list[Job]) -> str:
    varying = set(varying_keys(jobs))
    keys = [k for k in override_keys(jobs) if k not in varying]
    return " ".join(f"{k}={jobs[0].overrides[k]}" for k in keys)


def summary_table(jobs: list[Job]) -> tuple[list[str], list[dict[str, Any]]]:
    """summary.csv: job, status, error, every override, every figure (metrics, compression,
    per-model comparison metrics)."""
    keys = override_keys(jobs)
    figs = [flat_figures(j) for j in jobs]
    names: list[str] = []
    for f in figs:
        names += [k for k in f if k not in names]
    columns = ["job", "status", "error", *keys, *names]
    rows = []
    for job, f in zip(jobs, figs, strict=True):
        row = {"job": job.name, "status": job.status, "error": job.error or ""}
        row.update({k: job.overrides.get(k, "") for k in keys})
        row.update(f)
        rows.append(row)
    return columns, rows


def ranked(jobs: list[Job], metric: str) -> list[Job]:
    """Finished jobs that have `metric`, best first."""
    have = [j for j in jobs if j.status == FINISHED and metric in flat_figures(j)]
    sign = 1 if direction(metric) == "min" else -1
    return sorted(have, key=lambda j: sign * flat_figures(j)[metric])


@dataclass
class Spread:
    mean: float
    std: float  # sample standard deviation; nan for one value
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "-"
        std = "-" if math.isnan(self.std) else fmt(self.std)
        return f"{fmt(self.mean)} +- {std} (n={self.n})"


def spread(values: list[float]) -> Spread:
    if not values:
        return Spread(math.nan, math.nan, 0)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), std, len(values))


def fmt(x: Any) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if x.is_integer() and abs(x) >= 100:
            return f"{x:,.0f}"
        if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:.4g}" if abs(x) < 100 else f"{x:,.1f}"
    return str(x)


def seed_swept(jobs: list[Job]) -> bool:
    return len({j.overrides.get(SEED) for j in jobs if SEED in j.overrides}) > 1


def seed_groups(jobs: list[Job]) -> dict[tuple, list[Job]]:
    """Finished jobs grouped by every override but the seed."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        if job.status == FINISHED:
            key = tuple(sorted((k, v) for k, v in job.overrides.items() if k != SEED))
            groups.setdefault(key, []).append(job)
    return groups


def group_spreads(group: list[Job], names: list[str]) -> dict[str, Spread]:
    return {n: spread([flat_figures(j)[n] for j in group if n in flat_figures(j)]) for n in names}


def distilled_minus_scratch(group: list[Job], metric: str) -> Spread:
    """The paired (same job, same seed) difference distilled - scratch of `metric`."""
    diffs = [
        j.comparison["student_distilled"][metric] - j.comparison["student_scratch"][metric]
        for j in group
        if all(metric in j.comparison.get(role, {}) for role in STUDENTS)
    ]
    return spread(diffs)


def pareto_front(points: list[tuple[float, float]], y_direction: str) -> list[int]:
    """Indices of the points no other point beats on both axes (x: lower is better; y: by
    `y_direction`), sorted by x."""
    sign = 1 if y_direction == "min" else -1
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and sign * y2 <= sign * y) and (x2 < x or sign * y2 < sign * y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])
