"""A sweep run again into its own directory (`resume_sweep=DIR`): a job whose launcher was
killed mid-training continues from its last checkpoint, the jobs not yet run run, a failed job
is left as it was unless `rerun_failed=true`, finished jobs are reused untouched."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.runs.test_resume import cli, env
from tests.test_train import jobs_by

pytestmark = pytest.mark.slow
BASE = [t for t in TINY if not t.startswith("trainer.max_steps")]
ARGS = ["experiment=student", *BASE, "trainer.max_steps=300", "trainer.max_epochs=100"]


def run(args: list[str], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cli(args, root), "-m"], env=env(), capture_output=True, text=True, timeout=300
    )


def kill_when(proc: subprocess.Popen, log: Path, text: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and text in log.read_text() and (log.parent / "checkpoints").is_dir():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def test_a_killed_sweep_resumes_continues_its_interrupted_job_and_reruns_failed_on_request(
    tmp_path,
):
    sweep = tmp_path / "sweep"
    first = subprocess.Popen(
        [*cli([*ARGS, "seed=1,2", f"hydra.sweep.dir={sweep}"], tmp_path), "-m"],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_log = lambda: next(iter(jobs_by(sweep, "seed").values()), sweep) / "train.log"  # noqa: E731
    deadline = time.time() + 120
    while not wait_log().is_file() and time.time() < deadline:
        time.sleep(0.2)
    kill_when(first, wait_log(), " step 22 val")
    (killed,) = jobs_by(sweep, "seed").values()
    assert state(killed)["state"] == "running"  # the launcher and its job died together

    # the short form: the sweep's own command from its multirun.yaml
    again = run([f"resume_sweep={sweep}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    jobs = jobs_by(sweep, "seed")
    assert sorted(jobs) == ["1", "2"] and all(
        state(d)["state"] == "finished" for d in jobs.values()
    )
    text = jobs["1"].joinpath("train.log").read_text()
    (step,) = map(int, re.findall(r"continuing from step (\d+)", text)) or [None]
    assert step is not None and 0 < step < 300, text[-3000:]
    assert json.loads((jobs["1"] / "metrics.json").read_text())["trainer/global_step"] == 300

    # a job recorded failed (a lost node, say) is left as it was ...
    failed = jobs["2"]
    (failed / "metrics.json").unlink()
    record = {**state(failed), "state": "failed", "error": "RuntimeError: node lost"}
    (failed / "status.json").write_text(json.dumps(record))
    before = {s: (d / "status.json").read_bytes() for s, d in jobs.items()}
    kept = run([f"resume_sweep={sweep}"], tmp_path)
    assert kept.returncode == 1, kept.stderr[-3000:]  # the sweep has a failed job
    assert {s: (d / "status.json").read_bytes() for s, d in jobs.items()} == before
    assert "rerun_failed=true runs it again" in kept.stdout + kept.stderr
    # ... unless asked; the finished one is reused as it is
    rerun = run([f"resume_sweep={sweep}", "rerun_failed=true"], tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert state(failed)["state"] == "finished" and (failed / "metrics.json").is_file()
    assert (jobs["1"] / "status.json").read_bytes() == before["1"]
    rows = {r["seed"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert {s: (r["status"], r["reused"]) for s, r in rows.items()} == {
        "1": ("finished", "yes"),
        "2": ("finished", "no"),
    }


def test_an_optuna_study_in_the_sweep_directory_continues_when_the_sweep_runs_again(tmp_path):
    """The storage and seed of the optuna preset: 2 trials, then 1 more into the same sweep
    directory: one study of 3 trials, the first 2 jobs untouched, all 3 in the report."""
    import optuna
    from omegaconf import OmegaConf

    sweep = tmp_path / "sweep"
    args = [
        "hydra/sweeper=optuna",
        "hydra.sweeper.study_name=tiny",
        "hydra.sweeper.storage='${optuna_storage:${hydra.sweep.dir}}'",
        "hydra.sweeper.sampler.seed='${sweep_seed:1,${hydra.sweep.dir}}'",
        "hydra.sweeper.direction=minimize",
        "optimizer.lr=interval(0.001,0.01)",
        "experiment=student",
        *TINY,
        f"hydra.sweep.dir={sweep}",
    ]
    first = run([*args, "hydra.sweeper.n_trials=2"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {d: (d / "status.json").read_bytes() for d in jobs_by(sweep, "optimizer.lr").values()}
    more = run([*args, "hydra.sweeper.n_trials=1"], tmp_path)
    assert more.returncode == 0, more.stderr[-3000:]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{sweep / 'optuna.db'}")
    values = [t.value for t in study.trials]
    assert len(values) == 3 and all(v is not None for v in values)
    jobs = jobs_by(sweep, "optimizer.lr")
    assert len(jobs) == 3 and {d: (d / "status.json").read_bytes() for d in before} == before
    ppl = sorted(json.loads((d / "metrics.json").read_text())["val/ppl"] for d in jobs.values())
    assert sorted(values) == pytest.approx(ppl, rel=1e-6)
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best["best_value"] == pytest.approx(ppl[0], rel=1e-6)
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 3
