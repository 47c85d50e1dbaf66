"""resume= validation, runs never overwritten, status.json, the NaN guard, determinism."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

from distillab.errors import ConfigError
from distillab.losses.objective import Objective
from distillab.modules.finite import NonFiniteLossError
from distillab.runs.resume import prepare_resume
from distillab.runs.tracked import OutputError, run_tracked
from distillab.train import run_job
from distillab.validate import validate
from tests.conftest import TINY, TINY_TEACHER, compose_cfg


def test_resume_needs_a_config_and_a_last_checkpoint(tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=r"resume=.*old: no checkpoints/last.ckpt there"):
        validate(compose_cfg([*TINY, f"resume={run_dir}"], tmp_path))
    with pytest.raises(ConfigError, match=r"no config.yaml"):
        validate(compose_cfg([*TINY, f"resume={tmp_path}"], tmp_path))


@pytest.mark.slow  # a command-line run: Python and torch start-up dominate
def test_resume_error_through_the_cli_is_one_line_exit_2(tmp_path):
    cmd = [sys.executable, "-m", "distillab.train", f"paths.output_root={tmp_path}"]
    proc = subprocess.run([*cmd, f"resume={tmp_path / 'nope'}"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "distillab: error: resume=" in proc.stderr and "Traceback" not in proc.stderr


def test_a_run_directory_holding_a_run_is_never_reused(tmp_path):
    cfg = compose_cfg(TINY, tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "status.json").write_text('{"state": "finished"}')
    with pytest.raises(ConfigError, match=r"holds a run already; continue it with resume="):
        validate(cfg)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    forward = Objective.forward
    calls = []

    def poisoned(self, ctx, progress):
        loss, values, weights = forward(self, ctx, progress)
        calls.append(1)
        if len(calls) >= 5:  # the 5th training step (validation does not call it)
            values = {**values, "ce": values["ce"] * float("nan")}
            loss = loss * float("nan")
        return loss, values, weights

    monkeypatch.setattr(Objective, "forward", poisoned)
    cfg = compose_cfg([*TINY, "trainer.val_check_interval=2"], tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"step 4 .*ce=nan"):
        run_tracked(cfg, run_job)
    run_dir = tmp_path / "run"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "step 4" in status["error"]
    assert not (run_dir / "metrics.json").exists()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 4  # saved at the validation before the NaN, not after
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


@pytest.mark.parametrize("every, read_at", [(3, 5), (10, 6)], ids=["every-3", "at-checkpoint"])
def test_a_nan_read_every_n_steps_stops_before_it_is_saved(tmp_path, monkeypatch, every, read_at):
    """finite_check_every=N: the NaN of step 4 is read at the N-step boundary (step 5 with
    N=3) or before the next checkpoint (the validation at step 6), never written."""
    forward = Objective.forward
    calls = []

    def poisoned(self, ctx, progress):
        loss, values, weights = forward(self, ctx, progress)
        calls.append(1)
        if len(calls) == 5:
            loss = loss * float("nan")
        return loss, values, weights

    monkeypatch.setattr(Objective, "forward", poisoned)
    overrides = [*TINY, "trainer.val_check_interval=2", f"module.finite_check_every={every}"]
    cfg = compose_cfg(overrides, tmp_path)
    with pytest.raises(NonFiniteLossError, match=rf"between steps 4 and {read_at} "):
        run_tracked(cfg, run_job)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


VARIES = ("time/train_s", "throughput/train_tokens_per_s")


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["experiment=student"], ["experiment=distill", "distill.teacher_outputs=cached"]],
    ids=["student", "distill-cached"],
)
def test_same_config_and_seed_give_identical_metrics(tmp_path, overrides):
    runs = []
    for name in ("a", "b"):
        cfg = compose_cfg([*overrides, *TINY, *TINY_TEACHER], tmp_path)
        cfg.paths.output_dir = str(tmp_path / name)
        runs.append({k: v for k, v in run_job(cfg).items() if k not in VARIES})
    assert runs[0] == runs[1]


class SignalAt(pl.Callback):
    """Sends this process a real signal (`name`) after training step `step`."""

    def __init__(self, step: int, name: str = "SIGTERM") -> None:
        self.step, self.signal = step, getattr(signal, name)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGUSR2"])
def test_signal_before_any_validation_then_resume_in_process(tmp_path, name):
    """Stopped at the batch boundary by any of the signals, before ModelCheckpoint saved anything:
    the resumed run still ends with one up-to-date last.ckpt (no stale one beside last-v1)."""
    at = f"+callbacks.stop={{_target_: tests.runs.test_run_status.SignalAt, step: 3, name: {name}}}"
    cfg = compose_cfg([*TINY, at], tmp_path)
    with pytest.raises(SystemExit) as e:
        run_tracked(cfg, run_job)
    assert e.value.code == 128 + getattr(signal, name)
    run_dir = tmp_path / "run"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["signal"] == name
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    cfg = compose_cfg([*TINY, f"resume={run_dir}"], tmp_path)
    cfg.paths.output_dir = str(run_dir)
    metrics = run_tracked(prepare_resume(cfg), run_job)
    assert metrics["trainer/global_step"] == 6
    # one up-to-date last.ckpt, and the one it replaced kept whole beside it (a fallback)
    ckpts = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "last.prev.ckpt"]
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 6
    assert torch.load(ckpts / "last.prev.ckpt", weights_only=True)["global_step"] == 3
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_a_full_disk_is_one_clear_line_and_a_failed_status(tmp_path):
    cfg = compose_cfg(TINY, tmp_path)

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "x.ckpt"))

    with pytest.raises(OutputError, match=r"cannot write .*x.ckpt: No space left on device"):
        run_tracked(cfg, full)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and "No space left" in status["error"]


def fake_run(run_dir, cfg) -> None:
    """A run directory as an interrupted run leaves it: config.yaml, status, checkpoints."""
    from omegaconf import OmegaConf

    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / "status.json").write_text('{"state": "interrupted", "signal": "SIGTERM"}')


def tiny_checkpoint(path, step: int) -> None:
    torch.save(
        {"state_dict": {"model.w": torch.ones(2)}, "hyper_parameters": {}, "global_step": step},
        path,
    )


def test_a_damaged_last_checkpoint_is_refused_before_any_work_with_how_to_recover(tmp_path):
    from distillab.checkpoint import CheckpointError
    from distillab.runs.state import recorded_state

    run = tmp_path / "old"
    fake_run(run, compose_cfg(TINY, tmp_path))
    ckpts = run / "checkpoints"
    tiny_checkpoint(ckpts / "last.ckpt", 7)
    good = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "last.ckpt").write_bytes(good[: len(good) // 2])
    cfg = compose_cfg([*TINY, f"resume={run}"], tmp_path)
    with pytest.raises(
        CheckpointError, match=r"truncated.*no intact earlier checkpoint: put a good"
    ):
        validate(cfg)
    tiny_checkpoint(ckpts / "best.ckpt", 4)
    with pytest.raises(CheckpointError, match=r"the best checkpoint is intact \(step 4\): cp "):
        validate(cfg)
    tiny_checkpoint(ckpts / "last.prev.ckpt", 6)
    with pytest.raises(CheckpointError) as e:
        validate(cfg)
    message = str(e.value)
    assert "\n" not in message and message.startswith(
        f"resume={run}: checkpoint {ckpts / 'last.ckpt'}"
    )
    assert f"previous last checkpoint is intact (step 6): cp {ckpts / 'last.prev.ckpt'} " in message
    # a requeued job (no resume=) meets it too, before its data; the run stays resumable
    requeued = compose_cfg(TINY, tmp_path)
    requeued.paths.output_dir = str(run)
    with pytest.raises(CheckpointError, match=r"truncated"):
        prepare_resume(requeued)
    assert recorded_state(run) == "interrupted"
    (ckpts / "last.ckpt").write_bytes(good)  # the good file back: accepted
    assert prepare_resume(cfg).resume == str(run)
    (ckpts / "last.ckpt").unlink()  # a save cut between its two renames
    with pytest.raises(ConfigError, match=r"no checkpoints/last.ckpt there, but .*last.prev.ckpt"):
        validate(cfg)
