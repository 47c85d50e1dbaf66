"""Real multiruns at tiny budgets end in a report: the T x alpha grid through joblib and
submitit_local (one registry teacher), a 3-seed paper preset, a failing job, and a job re-run
from its saved `.hydra` config."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from distillab.train import CONF_DIR
from tests.conftest import TINY, TINY_TEACHER
from tests.jobs.test_transformer_students import DATA, STUDENTS, TEACHERS
from tests.test_train import run_cli

GRID = [
    "experiment=distill",
    "distill.teacher_outputs=cached",
    "distill.objective.temperature=1,4",
    "distill.objective.alpha=0.5,0.9",
]
GRID_JOBS = 4
if (Path(CONF_DIR) / "compress").is_dir():  # compression (issue 11): the third axis
    GRID += ["compress=prune", "compress.sparsity=0,0.5"]
    GRID_JOBS = 8


def sweep_dir(root: Path) -> Path:
    (found,) = root.glob("multiruns/*/*/multirun.yaml")
    return found.parent


def check_grid_report(root: Path) -> None:
    sweep = sweep_dir(root)
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == GRID_JOBS and {r["status"] for r in rows} == {"finished"}
    assert all(float(r["val/ppl"]) > 1 for r in rows)
    assert {(r["distill.objective.temperature"], r["distill.objective.alpha"]) for r in rows} == {
        ("1", "0.5"),
        ("1", "0.9"),
        ("4", "0.5"),
        ("4", "0.9"),
    }
    assert "## Best configuration" in (sweep / "report.md").read_text()
    assert len(list(sweep.glob("*.png"))) >= 2
    logs = [p.read_text() for p in sweep.glob("*/train.log")]
    assert sum("training it now" in log for log in logs) == 1  # the teacher, once
    assert len(list(root.glob("teachers/*/registry.json"))) == 1


@pytest.mark.slow
def test_grid_with_joblib_reports_every_job(tmp_path):
    args = ["hydra/launcher=joblib", *GRID, *TINY, *TINY_TEACHER]
    args.remove("threads=1")  # from the core count: jobs x threads <= cores
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_grid_report(tmp_path)
    configs = [p.read_text() for p in sweep_dir(tmp_path).glob("*/config.yaml")]
    assert all("threads: 1" in c for c in configs)  # 2 cores here: 2 jobs x 1 thread


@pytest.mark.slow
def test_grid_with_submitit_local_reports_every_job(tmp_path):
    proc = run_cli(["hydra/launcher=submitit_local", *GRID, *TINY, *TINY_TEACHER], tmp_path, True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_grid_report(tmp_path)


# tiny sizes per paper preset: the GRU quickstart's, and the transformer one's (BART-style)
PAPER_SIZES = {
    "paper_quickstart": [*TINY, *TINY_TEACHER],
    "paper_quickstart_transformer": [
        *DATA,
        *STUDENTS["hf_seq2seq"][1:],  # the preset picks model=hf_seq2seq
        *TEACHERS["transformer"][1:],  # and teacher=transformer
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PAPER_SIZES))
def test_paper_preset_reports_mean_and_std_per_model(tmp_path, preset):
    budget = [
        "teacher.train.trainer.max_steps=6",
        "data.max_train_examples=100",
        "trainer.check_val_every_n_epoch=1",
        "teacher.train.trainer.check_val_every_n_epoch=1",
    ]
    args = [f"experiment={preset}", *PAPER_SIZES[preset], *budget]
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = sweep_dir(tmp_path)
    assert len(list(sweep.glob("*/comparison.json"))) == 3
    models = (sweep / "report.md").read_text().split("## Models")[1]
    for role in ("student_scratch", "student_distilled", "distilled - scratch"):
        (row,) = [line for line in models.splitlines() if line.startswith(f"| {role}")]
        assert "+-" in row and "(n=3)" in row and "+- - " not in row.split("|")[2]
    assert "seeds 1, 2, 3" in models
    assert len(list(tmp_path.glob("teachers/*/registry.json"))) == 1  # trained once


@pytest.mark.slow
def test_a_failing_job_is_reported_and_the_sweep_goes_on(tmp_path):
    args = ["experiment=student", *TINY, "data.val_fraction=0.2,0.9"]
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 1  # a job failed: said at the end, after the report
    sweep = sweep_dir(tmp_path)
    rows = {r["data.val_fraction"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert rows["0.2"]["status"] == "finished" and float(rows["0.2"]["val/ppl"]) > 1
    assert rows["0.9"]["status"] == "failed" and "data.val_fraction=0.9" in rows["0.9"]["error"]
    assert "data.val_fraction=0.9" in (sweep / "report.md").read_text()


@pytest.mark.slow
def test_rerun_from_saved_hydra_config_reproduces_metrics(tmp_path):
    proc = run_cli(["experiment=student", *TINY], tmp_path / "a")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (first,) = (tmp_path / "a").glob("runs/*/*/metrics.json")
    again = tmp_path / "again"
    cmd = [sys.executable, "-m", "distillab.train", "--config-dir", str(first.parent / ".hydra")]
    cmd += ["--config-name", "config", f"hydra.run.dir={again}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def science(path: Path) -> dict:
        m = json.loads(path.read_text())
        return {k: v for k, v in m.items() if not k.startswith(("time/", "throughput/"))}

    assert science(again / "metrics.json") == science(first)
    assert json.loads((again / "data.json").read_text()) == json.loads(
        (first.parent / "data.json").read_text()
    )
