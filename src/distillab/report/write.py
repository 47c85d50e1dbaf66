"""Write a sweep's `summary.csv`, `report.md` and plots into its directory."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from distillab.report import plots
from distillab.report.collect import FINISHED, Job, collect
from distillab.report.summarise import (
    SEED,
    STUDENTS,
    common_overrides,
    direction,
    distilled_minus_scratch,
    flat_figures,
    fmt,
    group_spreads,
    objectives,
    pareto_front,
    ranked,
    seed_groups,
    seed_swept,
    summary_table,
    varying_keys,
)
from distillab.utils.io import atomic_write_text

HEADLINE = (
    "val/ppl",
    "test/ppl",
    "val/bleu",
    "val/rougeL",
    "val/distinct2",
    "val/ppl_gain",
    "model/params",
    "time/train_s",
    "compression/sparsity",
    "compression/size_bytes_compressed",
    "compression/latency_ms_compressed",
)
MODEL_METRICS = (
    "val/ppl",
    "test/ppl",
    "val/bleu",
    "val/rougeL",
    "val/distinct2",
    "val/teacher_agreement",
)
ROLES = ("teacher", *STUDENTS)


@dataclass
class Report:
    sweep_dir: Path
    jobs: list[Job]
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status != FINISHED]


def table(header: list[str], rows: list[list[str]]) -> str:
    def cell(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def overrides_text(job: Job, keys: list[str]) -> str:
    """The job's values of `keys` (the swept axes)."""
    return " ".join(f"{k}={job.overrides[k]}" for k in keys if k in job.overrides) or "(defaults)"


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def ranking_section(jobs: list[Job], metric: str, headline: list[str]) -> list[str]:
    best = ranked(jobs, metric)
    if not best:
        return [f"No finished job has `{metric}`.\n"]
    keys = varying_keys(jobs)
    rows = []
    for i, job in enumerate(best, 1):
        f = flat_figures(job)
        rows.append(
            [str(i), job.name, *(job.overrides.get(k, "") for k in keys)]
            + [fmt(f[m]) if m in f else "-" for m in headline]
        )
    top = best[0]
    return [
        "## Best configuration\n",
        f"Job `{top.name}`: `{overrides_text(top, keys)}`: **{metric} = {fmt(flat_figures(top)[metric])}**"
        f" ({direction(metric)}imised over {len(best)} finished jobs).\n",
        f"## Jobs, best first by {metric}\n",
        table(["rank", "job", *keys, *headline], rows),
    ]


def failures_section(jobs: list[Job]) -> list[str]:
    bad = [j for j in jobs if j.status != FINISHED]
    if not bad:
        return []
    keys = varying_keys(jobs)
    rows = [
        [j.name, overrides_text(j, keys), j.status, j.error or "(no error recorded)"] for j in bad
    ]
    return [
        "## Failed or incomplete jobs\n",
        "Incomplete: no `metrics.json` (the job was killed, or is still running).\n",
        table(["job", "overrides", "status", "error"], rows),
    ]


def seeds_section(jobs: list[Job], headline: list[str]) -> list[str]:
    if not seed_swept(jobs):
        return []
    rows, varying = [], set(varying_keys(jobs))
    for key, group in seed_groups(jobs).items():
        stats = group_spreads(group, headline)
        axes = " ".join(f"{k}={v}" for k, v in key if k in varying)
        rows.append([axes or "(one setting)", str(len(group))] + [str(stats[m]) for m in headline])
    return [
        "## Mean +- std over seeds\n",
        "Every other override held fixed; std is the sample standard deviation.\n",
        table(["overrides (seed aside)", "seeds", *headline], rows),
    ]


def models_section(jobs: list[Job]) -> list[str]:
    """Quickstart jobs (comparison.json): each model over the jobs, and distilled - scratch."""
    with_cmp = [j for j in jobs if j.status == FINISHED and j.comparison]
    if not with_cmp:
        return []
    out = ["## Models (quickstart comparison), mean +- std over jobs\n"]
    varying = set(varying_keys(with_cmp)) - {SEED}
    for key, group in seed_groups(with_cmp).items():
        axes = " ".join(f"{k}={v}" for k, v in key if k in varying)
        if axes:
            out.append(f"Setting: `{axes}`\n")
        seeds = ", ".join(j.overrides.get(SEED, "?") for j in group)
        out.append(f"{len(group)} jobs (seeds {seeds}).\n")
        rows = []
        for role in ROLES:
            cells = []
            for m in MODEL_METRICS:
                stats = group_spreads(group, [f"{role}/{m}"])[f"{role}/{m}"]
                cells.append(str(stats))
            rows.append([role, *cells])
        diff = [str(distilled_minus_scratch(group, m)) for m in MODEL_METRICS]
        rows.append(["distilled - scratch (paired by seed)", *diff])
        out.append(table(["model", *MODEL_METRICS], rows))
    return out


def pareto_section(jobs: list[Job], names: list[str]) -> list[str]:
    """A multi-objective sweep: the jobs no other beats on both of its first two objectives."""
    if len(names) < 2:
        return []
    x_name, y_name = names[1], names[0]
    have = [j for j in jobs if j.status == FINISHED and {x_name, y_name} <= set(flat_figures(j))]
    if not have:
        return [f"## Pareto front\n\nNo finished job has both {y_name} and {x_name}.\n"]
    sign = 1 if direction(x_name) == "min" else -1
    points = [(sign * flat_figures(j)[x_name], flat_figures(j)[y_name]) for j in have]
    front = pareto_front(points, direction(y_name))
    keys = varying_keys(jobs)
    rows = [
        [
            have[i].name,
            overrides_text(have[i], keys),
            fmt(flat_figures(have[i])[y_name]),
            fmt(flat_figures(have[i])[x_name]),
        ]
        for i in front
    ]
    return [
        f"## Pareto front: {y_name} vs {x_name}\n",
        table(["job", "overrides", y_name, x_name], rows),
    ]


def optuna_section(sweep_dir: Path) -> list[str]:
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return []
    return [
        "## Optuna's result (optimization_results.yaml)\n",
        "```yaml\n" + path.read_text() + "```\n",
    ]


def write_report(sweep_dir: str | Path, metric: str | None = None) -> Report:
    """Read every job under `sweep_dir`; write summary.csv, report.md and the plots there."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    report = Report(sweep_dir, jobs)
    names = objectives(jobs, metric)
    main = names[0]
    columns, rows = summary_table(jobs)
    write_csv(sweep_dir / "summary.csv", columns, rows)
    report.files.append(sweep_dir / "summary.csv")

    present = set().union(*(flat_figures(j) for j in jobs)) if jobs else set()
    after = [f"compression/metrics_after/{m}" for m in names]  # the compressed model's
    headline = [*names, *(m for m in after if m in present), *(m for m in HEADLINE if m in present)]
    headline = list(dict.fromkeys(headline))
    counts = {s: sum(j.status == s for j in jobs) for s in dict.fromkeys(j.status for j in jobs)}
    md = [
        f"# Sweep report: {sweep_dir.name}\n",
        f"{len(jobs)} jobs ({', '.join(f'{n} {s}' for s, n in counts.items()) or 'none found'}); "
        f"optimized metric: `{main}` ({'lower' if direction(main) == 'min' else 'higher'} is "
        "better). Every job's overrides, metrics, compression figures, status and error: "
        "`summary.csv`.\n",
    ]
    common = common_overrides(jobs)
    if common:
        md.append(f"Overrides common to all jobs: `{common}`\n")
    md += ranking_section(jobs, main, headline)
    md += failures_section(jobs)
    md += seeds_section(jobs, headline)
    md += models_section(jobs)
    md += pareto_section(jobs, names)
    md += optuna_section(sweep_dir)
    md.append("## Plots\n")
    drawn = [p(jobs, main, sweep_dir) for p in plots.PLOTS]
    if any(j.comparison for j in jobs):
        drawn.append(plots.models_over_seeds(jobs, "val/ppl", sweep_dir))
    for path, note in drawn:
        if path is not None:
            report.files.append(path)
            md.append(f"![{path.stem}]({path.name})\n")
        else:
            md.append(f"- {note}\n")
    atomic_write_text(sweep_dir / "report.md", "\n".join(md))
    report.files.append(sweep_dir / "report.md")
    return report
