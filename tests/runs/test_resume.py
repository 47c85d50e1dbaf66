"""Interruption and resume through the CLI: SIGTERM mid-training, `resume=RUN_DIR`, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, TINY_TEACHER

ROOT = Path(__file__).resolve().parents[2]
STEPS = [t for t in TINY if not t.startswith("trainer.max_steps")] + ["trainer.max_steps=150"]


def cli(args: list[str], root: Path) -> list[str]:
    return [sys.executable, "-m", "distillab.train", f"paths.output_root={root}", *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}


def run_dir_of(root: Path) -> Path:
    (d,) = root.glob("runs/*/*")
    return d


def start_and_terminate(args: list[str], root: Path, after: str) -> tuple[int, Path]:
    """Start a run, SIGTERM it once `after` appears in its train.log; its exit code and dir."""
    proc = subprocess.Popen(
        cli(args, root), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            logs = list(root.glob("runs/*/*/train.log"))
            if logs and after in logs[0].read_text():
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, run_dir_of(root), out.decode()


@pytest.mark.slow
def test_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole = subprocess.run(
        cli(["experiment=student", *STEPS], tmp_path / "a"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = json.loads((run_dir_of(tmp_path / "a") / "metrics.json").read_text())

    code, run_dir, out = start_and_terminate(
        ["experiment=student", *STEPS], tmp_path / "b", "step 50 train"
    )
    assert code == 128 + signal.SIGTERM, out[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["signal"] == "SIGTERM"
    assert f"resume={run_dir}" in status["resume"] and f"resume={run_dir}" in out
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not (
        run_dir / "metrics.json"
    ).exists()

    resumed = subprocess.run(
        cli([f"resume={run_dir}"], tmp_path / "b"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trainer/global_step"] == 150
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert abs(metrics["val/ppl"] / expected["val/ppl"] - 1) < 0.02, (
        metrics["val/ppl"],
        expected["val/ppl"],
    )
    print(f"val/ppl uninterrupted {expected['val/ppl']:.4f} resumed {metrics['val/ppl']:.4f}")
    assert list((run_dir / ".hydra").glob("resume_*/overrides.yaml"))  # the run's own record kept
    assert len(list((tmp_path / "b").glob("runs/*/*"))) == 1  # resumed in place


@pytest.mark.slow
def test_a_registry_teacher_interrupted_mid_training_resumes_from_its_staging_dir(tmp_path):
    teacher = [t for t in TINY_TEACHER if "max_steps" not in t] + [
        "teacher.train.trainer.max_steps=120"
    ]
    args = ["experiment=distill", *TINY, *teacher]
    code, run_dir, out = start_and_terminate(args, tmp_path, "step 50 train")
    assert code == 128 + signal.SIGTERM, out[-3000:]
    (staging,) = (tmp_path / "teachers").glob("*.partial")
    assert (staging / "checkpoints" / "last.ckpt").is_file()
    assert (
        "run the same command again" in json.loads((run_dir / "status.json").read_text())["resume"]
    )

    again = subprocess.run(
        cli(args, tmp_path), env=env(), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming it from {staging / 'checkpoints' / 'last.ckpt'}" in again.stdout
    (entry,) = [d for d in (tmp_path / "teachers").iterdir() if d.is_dir()]
    registered = json.loads((entry / "registry.json").read_text())
    assert registered["metrics"]["trainer/global_step"] == 120 and not staging.exists()


@pytest.mark.slow
def test_a_truncated_last_checkpoint_is_one_line_and_the_run_resumes_once_it_is_whole(tmp_path):
    from distillab.runs.tracked import run_tracked
    from distillab.train import run_job
    from tests.conftest import compose_cfg

    at = "+callbacks.stop={_target_: tests.runs.test_run_status.SignalAt, step: 3}"
    with pytest.raises(SystemExit):
        run_tracked(compose_cfg([*TINY, "trainer.val_check_interval=2", at], tmp_path), run_job)
    run_dir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    last, prev = ckpts / "last.ckpt", ckpts / "last.prev.ckpt"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])  # a copy cut short, a disk that filled up

    resume = cli([f"resume={run_dir}"], tmp_path)
    bad = subprocess.run(resume, env=env(), capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-3000:]
    (line,) = [x for x in bad.stderr.splitlines() if x.strip()]
    assert line.startswith(f"distillab: error: resume={run_dir}: checkpoint {last}: truncated")
    assert f"previous last checkpoint is intact (step 2): cp {prev} {last}" in line
    assert json.loads((run_dir / "status.json").read_text())["state"] == "interrupted"
    assert not (run_dir / "metrics.json").exists()

    last.write_bytes(good)  # the good file back
    again = subprocess.run(resume, env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing from step 3" in again.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trainer/global_step"] == 6
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
