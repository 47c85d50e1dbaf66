"""A requeued job (same command, same run directory) continues its own interrupted run: the
preemption notice (submitit's SIGUSR2) saves last.ckpt, the re-launched job resumes from it;
through `submitit_local`, submitit's own requeue does the re-launch."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from distillab.errors import ConfigError
from distillab.modules import reliability
from distillab.runs.resume import continue_in_place
from distillab.runs.state import config_changes, recorded_state
from distillab.validate import validate
from tests.conftest import TINY, compose_cfg
from tests.runs.test_resume import cli, env

STEPS = [t for t in TINY if not t.startswith("trainer.max_steps")] + ["trainer.max_steps=150"]


def continued_from(log: str) -> int:
    """The step a resumed fit started from (GracefulStop logs it)."""
    found = re.findall(r"continuing from step (\d+)", log)
    assert found, log[-3000:]
    return int(found[-1])


def signal_when(proc: subprocess.Popen, log: Path, after: str, sig: int, pid=None) -> str:
    """Send `sig` to `pid` (default: `proc`) once `after` appears in `log`; the output."""
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and after in log.read_text():
                target = pid() if callable(pid) else proc.pid
                if target:
                    os.kill(target, sig)
                    break
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out.decode()


def test_exit_code_follows_the_signal():
    assert reliability.exit_code("SIGUSR2") == 128 + signal.SIGUSR2
    assert reliability.exit_code(None) == 128 + signal.SIGTERM


def test_preemption_notice_outside_training_unwinds_then_hands_over():
    """Outside `fit` the notice raises `Preempted`; the handler that was there before (submitit's)
    gets it only through `hand_over`, after the job has recorded its state."""
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda s, f: calls.append(s))
    try:
        with pytest.raises(reliability.Preempted):
            with reliability.preemption_notice():
                signal.raise_signal(signal.SIGUSR2)
                time.sleep(1)
        assert calls == [] and reliability.last_signal == "SIGUSR2"
        reliability.hand_over()
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_run_dir_is_continued_only_by_its_own_interrupted_run(tmp_path):
    cfg = compose_cfg(TINY, tmp_path)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "status.json").write_text('{"state": "interrupted", "signal": "SIGUSR2"}')
    from omegaconf import OmegaConf

    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    validate(cfg)  # the same config: accepted
    assert continue_in_place(cfg).resume == str(run)

    other = compose_cfg([*TINY, "optimizer.lr=0.123"], tmp_path)
    assert config_changes(run, OmegaConf.to_container(other, resolve=True)) == [
        f"optimizer.lr: {cfg.optimizer.lr} -> 0.123"
    ]
    with pytest.raises(ConfigError, match=r"interrupted run of another config \(optimizer.lr: "):
        validate(other)

    (run / "status.json").write_text('{"state": "finished"}')
    assert recorded_state(run) == "finished"
    with pytest.raises(ConfigError, match=r"holds a run already; continue it with resume="):
        validate(compose_cfg(TINY, tmp_path))
    assert continue_in_place(compose_cfg(TINY, tmp_path)).get("resume") is None


@pytest.mark.slow
def test_sigusr2_saves_last_ckpt_and_the_same_command_resumes_it(tmp_path):
    run_dir = tmp_path / "job"
    args = ["experiment=student", *STEPS, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(
        cli(args, tmp_path), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = signal_when(proc, run_dir / "train.log", "step 50 train", signal.SIGUSR2)
    assert proc.returncode == 128 + signal.SIGUSR2, out[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["signal"] == "SIGUSR2"
    saved_step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved_step["global_step"] >= 50 and not (run_dir / "metrics.json").exists()

    again = subprocess.run(
        cli(args, tmp_path), env=env(), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert continued_from(again.stdout) == saved_step["global_step"] > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trainer/global_step"] == 150 and metrics["val/ppl"] > 1
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    logs = run_dir / "logs"  # the CSV log of the steps before the interruption is kept
    assert (logs / "metrics.0.csv").is_file() and (logs / "metrics.csv").is_file()

    finished = subprocess.run(
        cli(args, tmp_path), env=env(), capture_output=True, text=True, timeout=600
    )  # a finished run is never re-run in place
    assert finished.returncode == 2 and "holds a run already" in finished.stderr


def submitit_task(sweep_root: Path) -> int | None:
    """The pid of the running submitit_local task: the child of the job controller, whose pid
    is the local job id (the `.submitit/<id>` folder)."""
    for folder in sweep_root.glob("multiruns/*/*/.submitit/*"):
        children = Path(f"/proc/{folder.name}/task/{folder.name}/children")
        if folder.name.isdigit() and children.is_file():
            pids = children.read_text().split()
            return int(pids[0]) if pids else None
    return None


@pytest.mark.slow
def test_submitit_local_requeues_a_preempted_job_which_resumes(tmp_path):
    """SIGUSR2 (the notice submitit's controller sends before the time limit) to the task:
    last.ckpt is saved, submitit's handler requeues the job, and the requeued job (same
    pickled call, same job directory) continues from the checkpoint."""
    args = ["hydra/launcher=submitit_local", "experiment=student", *STEPS, "trainer.max_epochs=-1"]
    args += ["seed=1"]
    proc = subprocess.Popen(
        [*cli(args, tmp_path)[:3], "-m", *cli(args, tmp_path)[3:]],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def job_log() -> Path:
        found = list(tmp_path.glob("multiruns/*/*/*/train.log"))  # its one job
        return found[0] if found else tmp_path / "none"

    deadline = time.time() + 300
    while time.time() < deadline and not job_log().is_file() and proc.poll() is None:
        time.sleep(0.5)
    out = signal_when(
        proc, job_log(), "step 50 train", signal.SIGUSR2, pid=lambda: submitit_task(tmp_path)
    )
    assert proc.returncode == 0, out[-3000:]
    run_dir = job_log().parent
    log = job_log().read_text()
    assert "SIGUSR2: stopping after this batch" in log and "Requeued job" in log
    assert "holds this job's interrupted run: continuing it" in log
    assert continued_from(log) > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trainer/global_step"] == 150 and metrics["val/ppl"] > 1
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert len(list(tmp_path.glob("multiruns/*/*/*/metrics.json"))) == 1
