"""The sweep's PNG figures (matplotlib, Agg canvas: no display needed). Each function returns
the file it wrote, or None with the reason it was skipped (its data is absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from distillab.report.collect import COMPRESSION_PREFIX, DEPLOYED, FINISHED, Job
from distillab.report.summarise import (
    STUDENTS,
    direction,
    flat_figures,
    pareto_front,
    spread,
)

TEMPERATURE = "distill.objective.temperature"
ALPHA = "distill.objective.alpha"
SPARSITY = "compress.sparsity"
SIZE = COMPRESSION_PREFIX + "size_bytes_compressed"
LATENCY = COMPRESSION_PREFIX + "latency_ms_compressed"
ACHIEVED_SPARSITY = COMPRESSION_PREFIX + "sparsity"
UNITS = {  # metric name (last part) -> what it measures, for axis labels
    "ppl": "perplexity, lower is better",
    "bleu": "corpus BLEU-4, 0-1",
    "rougeL": "ROUGE-L F1, 0-1",
    "token_acc": "token accuracy, 0-1",
    "distinct1": "distinct-1, 0-1",
    "distinct2": "distinct-2, 0-1",
    "ppl_gain": "scratch - distilled perplexity, higher is better",
}

Result = tuple[Path | None, str]


def metric_label(metric: str) -> str:
    last = metric.rsplit("/", 1)[-1]
    what = UNITS.get(last, f"{'lower' if direction(metric) == 'min' else 'higher'} is better")
    return f"{metric} ({what})"


def number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def finished(jobs: list[Job], metric: str) -> list[Job]:
    return [j for j in jobs if j.status == FINISHED and metric in flat_figures(j)]


def lines(
    jobs: list[Job],
    metric: str,
    x_of: Callable[[Job], float | None],
    series_of: Callable[[Job], str],
    path: Path,
    title: str,
    xlabel: str,
) -> Path:
    """One line per series: the metric's mean over the jobs at each x (seeds and any other
    swept setting), with their standard deviation as error bars."""
    points: dict[str, dict[float, list[float]]] = {}
    for job in jobs:
        x = x_of(job)
        if x is not None:
            points.setdefault(series_of(job), {}).setdefault(x, []).append(
                flat_figures(job)[metric]
            )
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for name, by_x in sorted(points.items()):
        xs = sorted(by_x)
        stats = [spread(by_x[x]) for x in xs]
        errs = [0.0 if s.n < 2 else s.std for s in stats]
        ax.errorbar(xs, [s.mean for s in stats], yerr=errs, marker="o", capsize=3, label=name)
    xs = [x for by_x in points.values() for x in by_x]
    if min(xs) > 0 and max(xs) / min(xs) >= 4:  # temperatures 1, 2, 4, 8: evenly spaced
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(metric) + "\nmean +- std over runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, path)


def metric_vs_swept(
    jobs: list[Job], metric: str, out: Path, x: str, per: str, what: tuple[str, str, str, str, str]
) -> Result:
    """`metric` against the swept override `x`, one line per value of the override `per`;
    `what`: (short name of x, short name of per, file stem, title end, x-axis label)."""
    name, per_name, stem, title, xlabel = what
    have = [j for j in finished(jobs, metric) if number(j.overrides.get(x)) is not None]
    if len({j.overrides[x] for j in have}) < 2:
        return None, f"{metric} vs {name}: skipped ({x} not swept over 2+ values)"
    path = lines(
        have,
        metric,
        lambda j: number(j.overrides.get(x)),
        lambda j: f"{per_name}={j.overrides[per]}" if per in j.overrides else "all jobs",
        out / f"{stem}.png",
        f"{metric} vs {title}",
        xlabel,
    )
    return path, ""


def metric_vs_temperature(jobs: list[Job], metric: str, out: Path) -> Result:
    what = (
        "temperature",
        "alpha",
        "metric_vs_temperature",
        "distillation temperature, per alpha",
        "distillation temperature T (dimensionless)",
    )
    return metric_vs_swept(jobs, metric, out, TEMPERATURE, ALPHA, what)


def metric_vs_alpha(jobs: list[Job], metric: str, out: Path) -> Result:
    what = (
        "alpha",
        "T",
        "metric_vs_alpha",
        "KD weight alpha, per temperature",
        "alpha (weight of the KD term; 1 - alpha on gold cross-entropy)",
    )
    return metric_vs_swept(jobs, metric, out, ALPHA, TEMPERATURE, what)


def deployed(jobs: list[Job], metric: str) -> str:
    """The compressed model's `metric` (compression.json's metrics_after) when the jobs
    recorded it: what sparsity, size and latency cost in quality as deployed."""
    name = DEPLOYED + metric
    return name if any(name in flat_figures(j) for j in jobs) else metric


def sparsity_of(job: Job) -> float | None:
    """Achieved sparsity (compression.json) when recorded, else the target override."""
    return flat_figures(job).get(ACHIEVED_SPARSITY, number(job.overrides.get(SPARSITY)))


def metric_vs_sparsity(jobs: list[Job], metric: str, out: Path) -> Result:
    metric = deployed(jobs, metric)
    have = [j for j in finished(jobs, metric) if sparsity_of(j) is not None]
    if len({sparsity_of(j) for j in have}) < 2:
        return None, (
            f"{metric} vs sparsity: skipped (no 2+ sparsity values: sweep {SPARSITY}, "
            "with compression.json in the jobs)"
        )
    path = lines(
        have,
        metric,
        sparsity_of,
        lambda j: f"T={j.overrides[TEMPERATURE]}" if TEMPERATURE in j.overrides else "all jobs",
        out / "metric_vs_sparsity.png",
        f"{metric} vs sparsity",
        "sparsity (fraction of pruned weights that are zero)",
    )
    return path, ""


def pareto_plot(
    jobs: list[Job], metric: str, x_key: str, scale: float, xlabel: str, name: str, out: Path
) -> Result:
    metric = deployed(jobs, metric)
    have = [j for j in finished(jobs, metric) if x_key in flat_figures(j)]
    if len(have) < 2:
        return (
            None,
            f"{metric} vs {x_key}: skipped (fewer than 2 finished jobs with compression.json)",
        )
    points = [(flat_figures(j)[x_key] * scale, flat_figures(j)[metric]) for j in have]
    front = pareto_front(points, direction(metric))
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.scatter([p[0] for p in points], [p[1] for p in points], label="jobs", alpha=0.7)
    ax.plot(
        [points[i][0] for i in front],
        [points[i][1] for i in front],
        "r-o",
        label="Pareto front",
        linewidth=1.5,
    )
    for i in front:
        ax.annotate(
            have[i].name, points[i], fontsize="x-small", xytext=(3, 3), textcoords="offset points"
        )
    ax.set_title(f"{metric} vs {xlabel.split(' (')[0]}: Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, out / name), ""


def quality_vs_size(jobs: list[Job], metric: str, out: Path) -> Result:
    return pareto_plot(
        jobs, metric, SIZE, 1 / 1024, "compressed size (KiB on disk)", "quality_vs_size.png", out
    )


def quality_vs_latency(jobs: list[Job], metric: str, out: Path) -> Result:
    return pareto_plot(
        jobs,
        metric,
        LATENCY,
        1.0,
        "latency (ms, batch-1 greedy decode, as deployed)",
        "quality_vs_latency.png",
        out,
    )


def models_over_seeds(jobs: list[Job], metric: str, out: Path) -> Result:
    """Quickstart jobs: each model's metric, mean +- std over the jobs (seeds)."""
    roles = ["teacher", *STUDENTS]
    values = {
        r: [j.comparison[r][metric] for j in jobs if metric in j.comparison.get(r, {})]
        for r in roles
    }
    values = {r: v for r, v in values.items() if v}
    if not any(values.get(r) for r in STUDENTS):
        return None, f"models: skipped (no comparison.json with {metric})"
    stats = {r: spread(v) for r, v in values.items()}
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    names = list(stats)
    ax.bar(
        names,
        [stats[r].mean for r in names],
        yerr=[0.0 if stats[r].n < 2 else stats[r].std for r in names],
        capsize=4,
        color=["0.6", "tab:orange", "tab:blue"][: len(names)],
        label=f"mean +- std over {max(s.n for s in stats.values())} runs",
    )
    ax.set_title(f"{metric} per model, over seeds")
    ax.set_xlabel("model")
    ax.set_ylabel(metric_label(metric))
    ax.legend(fontsize="small")
    return save(fig, out / "models_over_seeds.png"), ""


PLOTS = (
    metric_vs_temperature,
    metric_vs_alpha,
    metric_vs_sparsity,
    quality_vs_size,
    quality_vs_latency,
)
