"""The sweep's PNG figures, drawn from its jobs' DataFrame (matplotlib, Agg canvas: no display
needed). Each function returns the file it wrote, or None with the reason it was skipped (its
data is absent)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from distillab.report.collect import COMPRESSION_PREFIX, DEPLOYED
from distillab.report.summarise import STUDENTS, Sweep, column, direction, pareto_front
from distillab.utils.metric_names import lower_is_better, metric

TEMPERATURE = "distill.objective.temperature"
ALPHA = "distill.objective.alpha"
SPARSITY = "compress.sparsity"
SIZE = COMPRESSION_PREFIX + "size_bytes_compressed"
LATENCY = COMPRESSION_PREFIX + "latency_ms_compressed"
ACHIEVED_SPARSITY = COMPRESSION_PREFIX + "sparsity"

Result = tuple[Path | None, str]


def metric_label(name: str) -> str:
    better = "lower" if lower_is_better(name) else "higher"
    return f"{name} ({metric(name).what}, {better} is better)"


def save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def finished(sweep: Sweep, name: str) -> pd.DataFrame:
    """Finished jobs that have `name`."""
    return sweep.finished[column(sweep.finished, name).notna()]


def number(df: pd.DataFrame, key: str) -> pd.Series:
    """An override as numbers (missing or not a number: NaN)."""
    return pd.to_numeric(column(df, key), errors="coerce")


def series_of(df: pd.DataFrame, key: str, short: str) -> pd.Series:
    """One line per value of the override `key` (`short=value`), else one for all jobs."""
    return column(df, key).map(lambda v: f"{short}={v}", na_action="ignore").fillna("all jobs")


def lines(
    df: pd.DataFrame,
    name: str,
    x: pd.Series,
    series: pd.Series,
    path: Path,
    title: str,
    xlabel: str,
) -> Path:
    """One line per series: the metric's mean over the jobs at each x (seeds and any other
    swept setting), with their standard deviation as error bars."""
    data = pd.DataFrame({"x": x, "series": series, "y": df[name]}).dropna(subset=["x"])
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for label, group in data.groupby("series"):
        stats = group.groupby("x")["y"].agg(["mean", "std"])  # std: NaN for one run
        yerr = stats["std"].fillna(0.0)
        ax.errorbar(stats.index, stats["mean"], yerr=yerr, marker="o", capsize=3, label=label)
    if data.x.min() > 0 and data.x.max() / data.x.min() >= 4:  # temperatures 1, 2, 4, 8
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(name) + "\nmean +- std over runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, path)


def metric_vs_swept(
    sweep: Sweep, name: str, out: Path, x: str, per: str, what: tuple[str, str, str, str, str]
) -> Result:
    """`name` against the swept override `x`, one line per value of the override `per`;
    `what`: (short name of x, short name of per, file stem, title end, x-axis label)."""
    short, per_short, stem, title, xlabel = what
    have = finished(sweep, name)
    have = have[number(have, x).notna()]
    if number(have, x).nunique() < 2:
        return None, f"{name} vs {short}: skipped ({x} not swept over 2+ values)"
    series = series_of(have, per, per_short)
    path = lines(
        have, name, number(have, x), series, out / f"{stem}.png", f"{name} vs {title}", xlabel
    )
    return path, ""


def metric_vs_temperature(sweep: Sweep, name: str, out: Path) -> Result:
    what = (
        "temperature",
        "alpha",
        "metric_vs_temperature",
        "distillation temperature, per alpha",
        "distillation temperature T (dimensionless)",
    )
    return metric_vs_swept(sweep, name, out, TEMPERATURE, ALPHA, what)


def metric_vs_alpha(sweep: Sweep, name: str, out: Path) -> Result:
    what = (
        "alpha",
        "T",
        "metric_vs_alpha",
        "KD weight alpha, per temperature",
        "alpha (weight of the KD term; 1 - alpha on gold cross-entropy)",
    )
    return metric_vs_swept(sweep, name, out, ALPHA, TEMPERATURE, what)


def deployed(sweep: Sweep, name: str) -> str:
    """The compressed model's `name` (compression.json's metrics_after) when the jobs
    recorded it: what sparsity, size and latency cost in quality as deployed."""
    return DEPLOYED + name if column(sweep.df, DEPLOYED + name).notna().any() else name


def metric_vs_sparsity(sweep: Sweep, name: str, out: Path) -> Result:
    name = deployed(sweep, name)
    have = finished(sweep, name)
    # achieved sparsity (compression.json) when recorded, else the target override
    sparsity = column(have, ACHIEVED_SPARSITY).combine_first(number(have, SPARSITY))
    if sparsity.nunique() < 2:
        return None, (
            f"{name} vs sparsity: skipped (no 2+ sparsity values: sweep {SPARSITY}, "
            "with compression.json in the jobs)"
        )
    path = lines(
        have,
        name,
        sparsity,
        series_of(have, TEMPERATURE, "T"),
        out / "metric_vs_sparsity.png",
        f"{name} vs sparsity",
        "sparsity (fraction of pruned weights that are zero)",
    )
    return path, ""


def pareto_plot(
    sweep: Sweep, name: str, x_key: str, scale: float, xlabel: str, file: str, out: Path
) -> Result:
    name = deployed(sweep, name)
    have = finished(sweep, name)
    have = have[column(have, x_key).notna()]
    if len(have) < 2:
        return (
            None,
            f"{name} vs {x_key}: skipped (fewer than 2 finished jobs with compression.json)",
        )
    xs, ys = have[x_key] * scale, have[name]
    front = pareto_front(list(zip(xs, ys, strict=True)), direction(name))
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.scatter(xs, ys, label="jobs", alpha=0.7)
    ax.plot(xs.iloc[front], ys.iloc[front], "r-o", label="Pareto front", linewidth=1.5)
    for i in front:
        point = (xs.iloc[i], ys.iloc[i])
        ax.annotate(
            have["job"].iloc[i],
            point,
            fontsize="x-small",
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_title(f"{name} vs {xlabel.split(' (')[0]}: Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(name))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, out / file), ""


def quality_vs_size(sweep: Sweep, name: str, out: Path) -> Result:
    xlabel = "compressed size (KiB on disk)"
    return pareto_plot(sweep, name, SIZE, 1 / 1024, xlabel, "quality_vs_size.png", out)


def quality_vs_latency(sweep: Sweep, name: str, out: Path) -> Result:
    xlabel = "latency (ms, batch-1 greedy decode, as deployed)"
    return pareto_plot(sweep, name, LATENCY, 1.0, xlabel, "quality_vs_latency.png", out)


def models_over_seeds(sweep: Sweep, name: str, out: Path) -> Result:
    """Quickstart jobs: each model's metric, mean +- std over the jobs (seeds)."""
    roles = ["teacher", *STUDENTS]
    values = pd.DataFrame({r: column(sweep.df, f"{r}/{name}") for r in roles}).dropna(
        axis=1, how="all"
    )
    if not set(STUDENTS) & set(values.columns):
        return None, f"models: skipped (no comparison.json with {name})"
    stats = values.agg(["mean", "std", "count"])
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.bar(
        list(values.columns),
        stats.loc["mean"],
        yerr=stats.loc["std"].fillna(0.0),
        capsize=4,
        color=["0.6", "tab:orange", "tab:blue"][: values.shape[1]],
        label=f"mean +- std over {int(stats.loc['count'].max())} runs",
    )
    ax.set_title(f"{name} per model, over seeds")
    ax.set_xlabel("model")
    ax.set_ylabel(metric_label(name))
    ax.legend(fontsize="small")
    return save(fig, out / "models_over_seeds.png"), ""


PLOTS = (
    metric_vs_temperature,
    metric_vs_alpha,
    metric_vs_sparsity,
    quality_vs_size,
    quality_vs_latency,
)
