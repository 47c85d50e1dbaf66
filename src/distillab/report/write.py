"""Write a sweep's `summary.csv` (the jobs' DataFrame), `report.md` (tables made from it) and
plots into its directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from distillab.report import plots
from distillab.report.collect import FINISHED, Job, collect
from distillab.report.summarise import (
    SEED,
    STUDENTS,
    Sweep,
    column,
    direction,
    distilled_minus_scratch,
    fmt,
    objectives,
    pareto_front,
    ranked,
    seed_groups,
    seed_swept,
    settings,
    spread,
    sweep_frame,
)
from distillab.utils.io import atomic_write_text
from distillab.utils.metric_names import lower_is_better

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
MODEL_METRICS = [
    "val/ppl",
    "test/ppl",
    "val/bleu",
    "val/rougeL",
    "val/distinct2",
    "val/teacher_agreement",
]
ROLES = ("teacher", *STUDENTS)


@dataclass
class Report:
    sweep_dir: Path
    jobs: list[Job]
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status != FINISHED]


def markdown(df: pd.DataFrame) -> str:
    """A markdown table of `df`'s cells as text (pipes escaped, one line per row)."""

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells)

    rows = [line(r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([line(df.columns) + " |", "|" + "---|" * df.shape[1], *rows]) + "\n"


def overrides_text(row: pd.Series, keys: list[str]) -> str:
    return settings(row, keys) or "(defaults)"


def ranking_section(sweep: Sweep, metric: str, headline: list[str]) -> list[str]:
    best = ranked(sweep, metric)
    if best.empty:
        return [f"No finished job has `{metric}`.\n"]
    keys = sweep.varying
    table = best[["job", "reused", *keys]].fillna("")
    table = table.join(best.reindex(columns=headline).map(fmt))
    table.insert(0, "rank", range(1, len(best) + 1))
    top = best.iloc[0]
    return [
        "## Best configuration\n",
        f"Job `{top.job}`: `{overrides_text(top, keys)}`: **{metric} = {fmt(top[metric])}**"
        f" ({direction(metric)}imised over {len(best)} finished jobs).\n",
        f"## Jobs, best first by {metric}\n",
        markdown(table),
    ]


def failures_section(sweep: Sweep) -> list[str]:
    bad = sweep.df[sweep.df["status"] != FINISHED]
    if bad.empty:
        return []
    table = pd.DataFrame(
        {
            "job": bad["job"],
            "overrides": [overrides_text(r, sweep.varying) for _, r in bad.iterrows()],
            "status": bad["status"],
            "error": bad["error"].replace("", "(no error recorded)"),
        }
    )
    return [
        "## Failed or incomplete jobs\n",
        "Incomplete: no `metrics.json` (the job was killed, or is still running).\n",
        markdown(table),
    ]


def seeds_section(sweep: Sweep, headline: list[str]) -> list[str]:
    if not seed_swept(sweep):
        return []
    rows = []
    for key, group in seed_groups(sweep.finished, sweep.keys):
        axes = settings(key, sweep.varying) or "(one setting)"
        rows.append([axes, len(group), *(spread(column(group, m)) for m in headline)])
    return [
        "## Mean +- std over seeds\n",
        "Every other override held fixed; std is the sample standard deviation.\n",
        markdown(pd.DataFrame(rows, columns=["overrides (seed aside)", "seeds", *headline])),
    ]


def models_section(sweep: Sweep) -> list[str]:
    """Quickstart jobs (comparison.json): each model over the jobs, and distilled - scratch."""
    roles = [c for c in sweep.figures if c.startswith(tuple(f"{r}/" for r in ROLES))]
    df = sweep.finished
    with_cmp = df[df[roles].notna().any(axis=1)] if roles else df.iloc[0:0]
    if with_cmp.empty:
        return []
    out = ["## Models (quickstart comparison), mean +- std over jobs\n"]
    varying = [k for k in sweep.keys if k != SEED and with_cmp[k].nunique(dropna=False) > 1]
    for key, group in seed_groups(with_cmp, sweep.keys):
        axes = settings(key, varying)
        if axes:
            out.append(f"Setting: `{axes}`\n")
        seeds = ", ".join(group[SEED].fillna("?")) if SEED in group else "?"
        out.append(f"{len(group)} jobs (seeds {seeds}).\n")
        rows = [[r, *(spread(column(group, f"{r}/{m}")) for m in MODEL_METRICS)] for r in ROLES]
        diff = [distilled_minus_scratch(group, m) for m in MODEL_METRICS]
        rows.append(["distilled - scratch (paired by seed)", *diff])
        out.append(markdown(pd.DataFrame(rows, columns=["model", *MODEL_METRICS])))
    return out


def pareto_section(sweep: Sweep, names: list[str]) -> list[str]:
    """A multi-objective sweep: the jobs no other beats on both of its first two objectives."""
    if len(names) < 2:
        return []
    x, y = names[1], names[0]
    df = sweep.finished
    have = df[column(df, x).notna() & column(df, y).notna()]
    if have.empty:
        return [f"## Pareto front\n\nNo finished job has both {y} and {x}.\n"]
    sign = 1 if direction(x) == "min" else -1
    front = pareto_front(list(zip(sign * have[x], have[y], strict=True)), direction(y))
    rows = have.iloc[front]
    table = pd.DataFrame(
        {
            "job": rows["job"],
            "overrides": [overrides_text(r, sweep.varying) for _, r in rows.iterrows()],
            y: rows[y].map(fmt),
            x: rows[x].map(fmt),
        }
    )
    return [f"## Pareto front: {y} vs {x}\n", markdown(table)]


def optuna_section(sweep_dir: Path) -> list[str]:
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return []
    return [
        "## Optuna's result (optimization_results.yaml)\n",
        "```yaml\n" + path.read_text() + "```\n",
    ]


def write_report(sweep_dir: str | Path, metric: str | None = None) -> Report:
    """Read every job under `sweep_dir`; write summary.csv, report.md and the plots there.
    An optimized metric that does not declare its direction is an error, before any file."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    report = Report(sweep_dir, jobs)
    names = objectives(jobs, metric)
    lower = [lower_is_better(n) for n in names]  # DistillabError for an unknown name
    main = names[0]
    sweep = sweep_frame(jobs)
    atomic_write_text(sweep_dir / "summary.csv", sweep.df.to_csv(index=False))
    report.files.append(sweep_dir / "summary.csv")

    present = [f for f in sweep.figures if sweep.df[f].notna().any()]
    after = [f"compression/metrics_after/{m}" for m in names]  # the compressed model's
    headline = [*names, *(m for m in [*after, *HEADLINE] if m in present)]
    headline = list(dict.fromkeys(headline))
    counts = sweep.df["status"].value_counts(sort=False)
    reused = sum(j.reused for j in jobs)
    counted = [f"{n} {s}" for s, n in counts.items()] + ([f"{reused} reused"] if reused else [])
    md = [
        f"# Sweep report: {sweep_dir.name}\n",
        f"{len(jobs)} jobs ({', '.join(counted) or 'none found'}); "
        f"optimized metric: `{main}` ({'lower' if lower[0] else 'higher'} is "
        "better). Every job's overrides, metrics, compression figures, status and error: "
        "`summary.csv`; `reused`: the job finished in an earlier run of this sweep and its "
        "result was taken as it was.\n",
    ]
    common = [k for k in sweep.keys if k not in sweep.varying]
    if common:
        md.append(f"Overrides common to all jobs: `{settings(sweep.df.iloc[0], common)}`\n")
    md += ranking_section(sweep, main, headline)
    md += failures_section(sweep)
    md += seeds_section(sweep, headline)
    md += models_section(sweep)
    md += pareto_section(sweep, names)
    md += optuna_section(sweep_dir)
    md.append("## Plots\n")
    drawn = [p(sweep, main, sweep_dir) for p in plots.PLOTS]
    if any(j.comparison for j in jobs):
        drawn.append(plots.models_over_seeds(sweep, "val/ppl", sweep_dir))
    for path, note in drawn:
        if path is not None:
            report.files.append(path)
            md.append(f"![{path.stem}]({path.name})\n")
        else:
            md.append(f"- {note}\n")
    atomic_write_text(sweep_dir / "report.md", "\n".join(md))
    report.files.append(sweep_dir / "report.md")
    return report
