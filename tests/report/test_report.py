"""Sweep reports from sweep directories written by hand: every job's own files, failed and
half-written jobs, seeds, compression figures, quickstart comparisons."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from distillab.errors import DistillabError
from distillab.report import write_report
from distillab.report.cli import main as compare
from distillab.report.collect import collect
from distillab.report.summarise import direction, pareto_front, spread
from distillab.utils.status import write_status


def make_job(
    sweep: Path,
    num: int,
    overrides: dict,
    metrics: dict | None = None,
    compression: dict | None = None,
    comparison: dict | None = None,
    status: tuple | None = None,
    optimized_metric="val/ppl",
) -> Path:
    d = sweep / str(num)
    (d / ".hydra").mkdir(parents=True)
    lines = "".join(f"- {k}={v}\n" for k, v in overrides.items())
    (d / ".hydra" / "overrides.yaml").write_text(lines)
    (d / ".hydra" / "config.yaml").write_text(json.dumps({"optimized_metric": optimized_metric}))
    for name, content in (
        ("metrics.json", metrics),
        ("compression.json", compression),
        ("comparison.json", comparison),
    ):
        if content is not None:
            (d / name).write_text(json.dumps(content))
    if status is not None:
        write_status(d, status[0], error=status[1] if len(status) > 1 else None)
    return d


GRID_KEYS = ["distill.objective.temperature", "distill.objective.alpha", "compress.sparsity"]


def grid_sweep(tmp_path: Path) -> Path:
    """T x alpha x sparsity x 2 seeds, with compression.json; plus a failed and a killed job."""
    sweep, n = tmp_path / "sweep", 0
    for t in (1, 4):
        for alpha in (0.5, 0.9):
            for sparsity in (0.0, 0.5):
                for seed in (1, 2):
                    ppl = 100 + 10 * t + 20 * alpha + 30 * sparsity + seed
                    make_job(
                        sweep,
                        n,
                        {
                            "experiment": "distill",
                            "distill.objective.temperature": t,
                            "distill.objective.alpha": alpha,
                            "compress.sparsity": sparsity,
                            "seed": seed,
                        },
                        metrics={"val/ppl": ppl, "val/bleu": 0.01, "model/params": 1000},
                        compression={
                            "sparsity": sparsity,
                            "size_bytes_compressed": 4000 * (1 - sparsity) + 100,
                            "latency_ms_compressed": 5.0 - 2 * sparsity + 0.1 * seed,
                            "sparsity_by_layer": {"w": sparsity},
                            "metrics_after": {"val/ppl": ppl + 50 * sparsity},
                        },
                        status=("finished",),
                    )
                    n += 1
    over = {"experiment": "distill", "distill.objective.temperature": 8, "seed": 1}
    make_job(sweep, n, over, status=("failed", "RuntimeError: loss is nan at step 3"))
    make_job(sweep, n + 1, over)  # killed before it wrote anything but its config
    (sweep / str(n + 1) / "metrics.json").write_text('{"val/ppl": 1')  # half-written
    return sweep


def test_grid_report_has_every_job_the_best_config_seeds_and_plots(tmp_path):
    sweep = grid_sweep(tmp_path)
    report = write_report(sweep)
    assert len(report.jobs) == 18 and len(report.failed) == 2
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 18
    head = (sweep / "summary.csv").read_text().splitlines()[0].split(",")
    assert head[:9] == ["job", "status", "reused", "error", "experiment", *GRID_KEYS, "seed"]
    assert {"val/ppl", "val/bleu", "model/params", "compression/latency_ms_compressed"} < set(head)
    assert rows[0]["distill.objective.temperature"] == "1" and rows[0]["status"] == "finished"
    assert float(rows[1]["compression/size_bytes_compressed"]) == 4100.0
    assert float(rows[2]["compression/metrics_after/val/ppl"]) == float(rows[2]["val/ppl"]) + 25
    assert float(rows[2]["compression/sparsity_by_layer/w"]) == 0.5
    assert rows[16]["status"] == "failed" and "loss is nan" in rows[16]["error"]
    assert rows[17]["status"] == "incomplete" and rows[17]["val/ppl"] == ""
    md = (sweep / "report.md").read_text()
    # best: T=1, alpha=0.5, sparsity 0, seed 1 -> 100 + 10 + 10 + 0 + 1 = 121
    best = md.split("## Best configuration")[1].split("##")[0]
    assert "distill.objective.temperature=1 distill.objective.alpha=0.5" in best
    assert "compress.sparsity=0.0 seed=1" in best and "val/ppl = 121" in best
    # mean +- std over seeds 1, 2: 121, 122 -> 121.5 +- 0.7071
    assert "121.5 +- 0.7071 (n=2)" in md
    seeds = md.split("## Mean +- std over seeds")[1].split("##")[0]
    groups = [line for line in seeds.splitlines() if line.startswith("| distill.")]
    assert len(groups) == 8 and all("| 2 | " in g for g in groups)  # 8 settings x 2 seeds
    assert "seed=" not in seeds and "temperature=8" not in seeds  # failed jobs stay out
    # the worst setting: T=4, alpha=0.9, sparsity 0.5 -> 174, 175; deployed ppl +25
    (worst,) = [
        g for g in groups if "temperature=4 distill.objective.alpha=0.9 compress.sparsity=0.5" in g
    ]
    assert "| 174.5 +- 0.7071 (n=2) | 199.5 +- 0.7071 (n=2) |" in worst
    ranking = md.split("## Jobs, best first by val/ppl")[1].split("##")[0]
    ranks = [line.split(" | ")[0:2] for line in ranking.splitlines()[3:] if line.startswith("| ")]
    assert ranks[:3] == [["| 1", "0"], ["| 2", "1"], ["| 3", "4"]] and len(ranks) == 16
    assert "loss is nan" in md and "incomplete" in md
    assert "| compression/metrics_after/val/ppl |" in md  # the deployed model's, ranked beside
    for name in (
        "metric_vs_temperature",
        "metric_vs_alpha",
        "metric_vs_sparsity",
        "quality_vs_size",
        "quality_vs_latency",
    ):
        assert (sweep / f"{name}.png").stat().st_size > 1000, name
        assert f"({name}.png)" in md


def test_missing_data_skips_plots_with_a_note(tmp_path):
    sweep = tmp_path / "sweep"
    for i, lr in enumerate((0.001, 0.002)):
        make_job(sweep, i, {"optimizer.lr": lr}, metrics={"val/ppl": 10.0 + i})
    write_report(sweep)
    md = (sweep / "report.md").read_text()
    assert not list(sweep.glob("*.png"))
    assert (
        "vs temperature: skipped" in md and "fewer than 2 finished jobs with compression.json" in md
    )
    assert "optimizer.lr=0.001" in md.split("## Best configuration")[1]


def test_quickstart_jobs_report_models_over_seeds_and_paired_difference(tmp_path):
    sweep = tmp_path / "sweep"
    for i, seed in enumerate((1, 2, 3)):
        comparison = {
            "teacher": {"val/ppl": 145.0},
            "student_scratch": {"val/ppl": 330.0 + seed},
            "student_distilled": {"val/ppl": 250.0 + 3 * seed},
        }
        make_job(
            sweep,
            i,
            {"experiment": "paper_quickstart", "seed": seed},
            metrics={"val/ppl": 250.0 + 3 * seed},
            comparison=comparison,
        )
    write_report(sweep)
    md = (sweep / "report.md").read_text()
    models = md.split("## Models")[1]
    assert "332 +- 1 (n=3)" in models  # scratch: 331, 332, 333
    assert "256 +- 3 (n=3)" in models  # distilled: 253, 256, 259
    assert "-76 +- 2 (n=3)" in models  # paired distilled - scratch: -78, -76, -74
    assert "145 +- - (n=3)" not in models and "145 +- 0 (n=3)" in models
    assert (sweep / "models_over_seeds.png").is_file()
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert float(rows[0]["student_scratch/val/ppl"]) == 331.0


def test_multi_objective_sweep_lists_its_pareto_front(tmp_path):
    sweep = tmp_path / "sweep"
    objectives = ["val/ppl", "compression/size_bytes_compressed"]
    for i, (ppl, size) in enumerate([(10, 300), (12, 100), (11, 400), (13, 200)]):
        make_job(
            sweep,
            i,
            {"compress.sparsity": i / 10},
            metrics={"val/ppl": ppl},
            compression={"size_bytes_compressed": size},
            optimized_metric=objectives,
        )
    write_report(sweep)
    front = (sweep / "report.md").read_text().split("## Pareto front")[1]
    rows = [line for line in front.splitlines() if line.startswith("| ") and "job" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "0"]  # (12, 100) and (10, 300)


def test_pareto_front_and_directions():
    points = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0)]
    assert pareto_front(points, "min") == [0, 1, 3]
    assert pareto_front(points, "max") == [0]  # smallest x, and no one has more y... (1, 5)
    assert direction("val/ppl") == "min" and direction("student_distilled/val/ppl") == "min"
    assert direction("val/bleu") == "max" and direction("val/ppl_gain") == "max"
    assert direction("throughput/train_tokens_per_s") == "max"
    assert direction("compression/latency_ms_compressed") == "min"
    assert direction("compression/metrics_after/val/bleu") == "max"
    assert direction("compression/retained/test/ppl") == "min"
    assert spread([1.0]) == "1 +- - (n=1)" and spread([]) == "-"
    assert spread([1.0, None, 3.0]) == "2 +- 1.414 (n=2)"  # missing values are not counted


@pytest.mark.parametrize("name", ["val/pplx", "val/ppl_ratio", "compression/size_ratio"])
def test_an_undeclared_metric_is_an_error_naming_it(name):
    with pytest.raises(DistillabError, match=rf"metric '{name}': unknown"):
        direction(name)
    with pytest.raises(DistillabError, match="not a figure of merit"):
        direction("trainer/global_step")


def test_collect_ignores_the_sweep_root_and_orders_jobs_numerically(tmp_path):
    sweep = tmp_path / "sweep"
    for i in (10, 2, 1):
        make_job(sweep, i, {"seed": i}, metrics={"val/ppl": 1.0})
    assert [j.name for j in collect(sweep)] == ["1", "2", "10"]


def test_compare_cli(tmp_path, capsys):
    assert compare([str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert compare([str(tmp_path / "empty")]) == 2
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, {"seed": 1}, metrics={"val/ppl": 3.0, "val/bleu": 0.1})
    make_job(sweep, 1, {"seed": 2}, status=("failed", "ValueError: boom"))
    assert compare([str(sweep), "--metric", "val/bleu"]) == 0
    assert "2 jobs (1 failed or incomplete)" in capsys.readouterr().out
    md = (sweep / "report.md").read_text()
    assert "optimized metric: `val/bleu` (higher is better)" in md and "ValueError: boom" in md
    # an undeclared metric: one line naming it and the closest declared names, no file written
    (sweep / "report.md").unlink()
    assert compare([str(sweep), "--metric", "val/blue"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("distillab-compare: error: metric 'val/blue': unknown") and "val/bleu" in err
    )
    assert not (sweep / "report.md").exists()


@pytest.mark.parametrize("bad", [None, "{"])
def test_unreadable_overrides_still_a_job(tmp_path, bad):
    d = make_job(tmp_path / "sweep", 0, {}, metrics={"val/ppl": 2.0})
    if bad is not None:
        (d / ".hydra" / "overrides.yaml").write_text(bad)
    (job,) = collect(tmp_path / "sweep")
    assert job.status == "finished" and job.figures["val/ppl"] == 2.0


def test_status_written_as_state_is_read_too(tmp_path):
    d = make_job(tmp_path / "sweep", 0, {"seed": 1})
    (d / "status.json").write_text(
        json.dumps({"state": "interrupted", "signal": "SIGTERM", "updated": "2026-01-01"})
    )
    (job,) = collect(tmp_path / "sweep")
    assert job.status == "interrupted" and job.error is None


def test_job_start_does_not_import_matplotlib():
    """Every job instantiates the callback and computes its objective: no plotting stack."""
    import subprocess
    import sys

    code = "import sys, distillab.report.callback, distillab.report.collect; "
    code += "print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
