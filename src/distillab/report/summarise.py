"""A sweep as a pandas DataFrame (one row per job: its overrides, status and figures), and the
tables made from it: jobs ranked by the optimized metric, mean +- std over seeds (every other
override held fixed), the paired distilled - scratch difference of quickstart jobs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from distillab.report.collect import FINISHED, Job
from distillab.utils.metric_names import lower_is_better

SEED = "seed"
STUDENTS = ("student_scratch", "student_distilled")
FIXED = ["job", "status", "reused", "error"]


def direction(metric: str) -> str:
    """`min` or `max`, as the metric declares (utils/metric_names.py); unknown: an error."""
    return "min" if lower_is_better(metric) else "max"


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


@dataclass
class Sweep:
    df: pd.DataFrame  # summary.csv: job, status, reused, error, the overrides, the figures
    keys: list[str]  # the override columns, in first-seen order
    figures: list[str]  # the figure columns

    @property
    def varying(self) -> list[str]:
        """The overrides whose value differs between jobs (the swept axes)."""
        return [k for k in self.keys if self.df[k].nunique(dropna=False) > 1]

    @property
    def finished(self) -> pd.DataFrame:
        return self.df[self.df["status"] == FINISHED]


def sweep_frame(jobs: list[Job]) -> Sweep:
    keys = list(dict.fromkeys(k for j in jobs for k in j.overrides))
    flat = [flat_figures(j) for j in jobs]
    figures = list(dict.fromkeys(k for f in flat for k in f))
    rows = [
        {
            "job": j.name,
            "status": j.status,
            "reused": "yes" if j.reused else "no",
            "error": j.error or "",
            **j.overrides,
            **f,
        }
        for j, f in zip(jobs, flat, strict=True)
    ]
    return Sweep(pd.DataFrame(rows, columns=[*FIXED, *keys, *figures]), keys, figures)


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """`df[name]`, or missing values when no job has it."""
    return df[name] if name in df.columns else pd.Series(math.nan, index=df.index)


def ranked(sweep: Sweep, metric: str) -> pd.DataFrame:
    """Finished jobs that have `metric`, best first."""
    have = sweep.finished[column(sweep.finished, metric).notna()]
    if have.empty:
        return have
    return have.sort_values(metric, ascending=lower_is_better(metric), kind="stable")


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


def spread(values: pd.Series) -> str:
    """`mean +- std (n=count)` of the present values (std: the sample's; `-` for one value)."""
    v = pd.Series(values, dtype=float).dropna()
    std = 0.0 if len(v) > 1 and v.nunique() == 1 else v.std()  # equal values: exactly 0
    return f"{fmt(v.mean())} +- {fmt(std)} (n={len(v)})" if len(v) else "-"


def settings(row: pd.Series | dict, keys: list[str]) -> str:
    """`k=v` of the overrides `keys` a job (or a group) has."""
    return " ".join(f"{k}={row[k]}" for k in keys if k in row and pd.notna(row[k]))


def seed_swept(sweep: Sweep) -> bool:
    return SEED in sweep.keys and sweep.df[SEED].nunique() > 1


def seed_groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Jobs grouped by every override but the seed, in first-seen order: (key values, jobs)."""
    by = [k for k in keys if k != SEED]
    if not by:
        yield {}, df
        return
    for key, group in df.groupby(by, dropna=False, sort=False):
        yield dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)), group


def distilled_minus_scratch(group: pd.DataFrame, metric: str) -> str:
    """The paired (same job, same seed) difference distilled - scratch of `metric`."""
    d, s = (column(group, f"{role}/{metric}") for role in reversed(STUDENTS))
    return spread(d - s)


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
