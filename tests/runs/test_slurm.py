"""Runs through `hydra/launcher=slurm` on a real Slurm cluster (CI starts a one-node one with
`.ci/slurm-up.sh`): a sweep and its report, a preempted job requeued by submitit that continues
from its own step, and a 2-task DDP job (its metrics, and a rank's crash recorded as failed).
Without a cluster these tests skip; with `CI=true` that is a failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.runs.test_resume import cli, env
from tests.test_train import jobs_by

pytestmark = pytest.mark.slow

# one CPU and 2 GB per task: two tasks fit a 2-core node
SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.tasks_per_node=1",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
]
BASE = [t for t in TINY if not t.startswith("trainer.max_steps")]


@pytest.fixture(scope="module")
def cluster() -> None:
    """A Slurm cluster answering with an idle (or busy) node; skip without one, fail on CI."""
    why = None
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        why = "Slurm is not installed (sinfo/sbatch not found; CI starts .ci/slurm-up.sh)"
    else:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
        if out.returncode != 0 or not re.search(r"^(idle|mixed|allocated)", out.stdout, re.M):
            why = f"the Slurm cluster is down (sinfo: {(out.stdout + out.stderr).strip()!r})"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)


def launch(args: list[str], root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*cli([*SLURM, *args, f"hydra.sweep.dir={root / 'sweep'}"], root), "-m"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out


def wait_for(check, what: str, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def job_id(sweep: Path) -> str:
    """The Slurm job id of the sweep's (first) job: its `.submitit/<id>` folder."""
    return wait_for(
        lambda: next((p.name for p in (sweep / ".submitit").glob("[0-9]*")), None), "a job"
    )


def the_job(sweep: Path) -> Path:
    """The directory of the sweep's one job (named by its overrides), once Hydra made it."""
    return wait_for(lambda: next((p.parent for p in sweep.glob("*/.hydra")), None), "its job")


def state(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text())["state"]
    except (OSError, ValueError, KeyError):
        return None


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_two_job_sweep_finishes_and_writes_its_report(cluster, tmp_path):
    proc = launch(["experiment=student", *BASE, "trainer.max_steps=8", "seed=1,2"], tmp_path)
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    jobs = jobs_by(tmp_path / "sweep", "seed")
    sweep = tmp_path / "sweep"
    assert [state(jobs[s]) for s in ("1", "2")] == ["finished", "finished"], out[-3000:]
    assert metrics(jobs["1"])["trainer/global_step"] == 8
    assert "2 jobs (2 finished)" in (sweep / "report.md").read_text()
    assert len((sweep / "summary.csv").read_text().strip().splitlines()) == 3


def test_a_preempted_job_is_requeued_and_continues_from_its_own_step(cluster, tmp_path):
    proc = launch(
        ["experiment=student", *BASE, "trainer.max_steps=600", "trainer.max_epochs=100"], tmp_path
    )
    run_dir = the_job(tmp_path / "sweep")
    job = job_id(tmp_path / "sweep")
    log = run_dir / "train.log"
    wait_for(lambda: log.is_file() and " step 100 train" in log.read_text(), "step 100")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    # submitit requeues it; Slurm holds a requeued job back (begin time): start it now
    wait_for(lambda: state(run_dir) == "interrupted", "the interruption to be recorded")
    start_requeued(job, run_dir, "continuing from step")
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    text = log.read_text()
    (step,) = map(int, re.findall(r"continuing from step (\d+)", text)) or [None]
    assert step is not None and 100 <= step < 600, text[-3000:]
    assert state(run_dir) == "finished" and metrics(run_dir)["trainer/global_step"] == 600


DDP = ["experiment=student", *BASE, "trainer.max_steps=30", "trainer=ddp_cpu"]


def test_a_two_task_ddp_job_matches_ddp_cpu_run_directly(cluster, tmp_path):
    proc = launch(["hydra.launcher.tasks_per_node=2", *DDP], tmp_path)
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    slurm = the_job(tmp_path / "sweep")
    assert state(slurm) == "finished", out[-3000:]
    direct = subprocess.run(
        cli([*DDP, f"hydra.run.dir={tmp_path / 'direct'}"], tmp_path / "out"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert direct.returncode == 0, direct.stderr[-3000:]
    m_slurm, m_direct = metrics(slurm), metrics(tmp_path / "direct")
    print(f"val/ppl slurm 2 tasks {m_slurm['val/ppl']:.4f} ddp_cpu {m_direct['val/ppl']:.4f}")
    assert m_slurm["trainer/global_step"] == m_direct["trainer/global_step"] == 30
    for key in ("val/ppl", "test/ppl"):
        assert abs(m_slurm[key] / m_direct[key] - 1) < 0.02, (key, m_slurm, m_direct)


def rank_pid(job: str, rank: int) -> int | None:
    """The pid of task `rank` of Slurm job `job` on this node (its environment says so)."""
    want = {f"SLURM_JOB_ID={job}", f"SLURM_PROCID={rank}"}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = set((proc / "environ").read_bytes().decode(errors="replace").split("\0"))
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if want <= environ and b"submitit" in cmdline:
            return int(proc.name)
    return None


def test_a_ddp_job_whose_rank_crashes_is_recorded_failed(cluster, tmp_path):
    proc = launch(["hydra.launcher.tasks_per_node=2", *DDP, "trainer.max_steps=5000"], tmp_path)
    run_dir = the_job(tmp_path / "sweep")
    job = job_id(tmp_path / "sweep")
    log = run_dir / "train.log"
    wait_for(lambda: log.is_file() and " step 13 val" in log.read_text(), "training to start")
    os.kill(wait_for(lambda: rank_pid(job, 1), "rank 1"), signal.SIGKILL)
    try:
        # rank 0 records the job failed and writes the dead rank's result file: without
        # accounting (no sacct) submitit's launcher would otherwise wait for it forever
        out = finish(proc, timeout=120)
    finally:
        subprocess.run(["scancel", job])
    assert proc.returncode == 1, out[-3000:]  # the sweep ended, with a failed job
    status = json.loads((run_dir / "status.json").read_text())
    # gloo's words for the dead peer vary with the moment it died: reset or closed
    assert status["state"] == "failed", status
    assert re.search(r"Connection (reset|closed) by peer", status["error"]), status
    assert not (run_dir / "metrics.json").exists()
    assert "1 of 1 jobs did not finish" in out, out[-3000:]


def start_requeued(job: str, run_dir: Path, was: str) -> None:
    """Slurm holds a requeued job back (its begin time): start it now, once it is pending
    (done when its run is no longer `interrupted` or its log has `was`). The other Slurm tests
    may hold the node's CPUs meanwhile (pytest-xdist runs them side by side): the requeued job
    then waits for resources, not for its begin time."""
    # slurmd refuses a launch whose credential dates from the second in which the requeue
    # revoked the old one ("Job credential revoked": the job is killed, not requeued again)
    time.sleep(2)

    def started() -> bool:  # a running job refuses the update: ignored
        cmd = ["scontrol", "update", f"jobid={job}", "StartTime=now"]
        subprocess.run(cmd, capture_output=True)
        return state(run_dir) != "interrupted" or log_has(run_dir, was)

    wait_for(started, "the requeued job to start", timeout=360)


def log_has(run_dir: Path, text: str) -> bool:
    log = run_dir / "train.log"
    return log.is_file() and text in log.read_text()


def test_a_job_at_its_time_limit_is_requeued_at_most_max_num_timeout_times(cluster, tmp_path):
    """timeout_min=1: Slurm signals USR2 signal_delay_s before the limit (give or take its
    30-60 s scheduling resolution); with max_num_timeout=1 the job is requeued once, continues
    (from its last checkpoint when it had saved one), and at the second limit it is not
    requeued: it ends interrupted."""
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=20"]
    args = [*limit, "hydra.launcher.max_num_timeout=1", "experiment=student", *BASE]
    proc = launch([*args, "trainer.max_steps=1000000", "trainer.max_epochs=100000"], tmp_path)
    run_dir = the_job(tmp_path / "sweep")
    job = job_id(tmp_path / "sweep")
    try:
        wait_for(lambda: state(run_dir) == "interrupted", "the first time limit", timeout=150)
        start_requeued(job, run_dir, "running")
        wait_for(lambda: state(run_dir) == "running", "the requeued job", timeout=60)
        wait_for(lambda: state(run_dir) == "interrupted", "the second time limit", timeout=150)
        out = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["scancel", job])
    text = (run_dir / "train.log").read_text()
    assert text.count("interrupted (SIGUSR2)") == 2, text[-3000:]
    assert text.count("continuing from step") <= 1 and "timed-out too many times" in text
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["resumed"], status
    assert "timed-out too many times" in status["not_requeued"]
    assert not (run_dir / "metrics.json").exists()
    assert proc.returncode == 1 and "1 of 1 jobs did not finish" in out, out[-3000:]


def test_a_sweep_whose_launcher_was_killed_is_resumed_by_the_same_command(cluster, tmp_path):
    """SIGKILL to `distillab-train -m` while its Slurm jobs run: the jobs go on; the same
    sweep run again (resume_sweep=DIR) waits for them (their status.json heartbeat), takes
    their results and ends with every job finished."""
    args = ["experiment=student", *BASE, "trainer.max_steps=200", "trainer.max_epochs=100"]
    proc = launch([*args, "seed=1,2"], tmp_path)
    sweep = tmp_path / "sweep"
    wait_for(
        lambda: any(log_has(d, " step 11 val") for d in jobs_by(sweep, "seed").values()),
        "a job to train",
        timeout=240,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    again = subprocess.Popen(
        [*cli([f"resume_sweep={sweep}"], tmp_path), "-m"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = finish(again, timeout=300)
    assert again.returncode == 0, out[-3000:]
    jobs = jobs_by(sweep, "seed")
    assert sorted(jobs) == ["1", "2"] and all(state(d) == "finished" for d in jobs.values())
    assert all(metrics(d)["trainer/global_step"] == 200 for d in jobs.values())
    assert "2 jobs (2 finished, 2 reused)" in (sweep / "report.md").read_text()
