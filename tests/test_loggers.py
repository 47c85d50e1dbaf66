"""Loggers: W&B stays offline without a key and receives the whole resolved config."""

import pytest

from distillab.train import run_job
from tests.conftest import compose_cfg


@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
def test_logger_runs_offline_and_logs_config(tmp_path, tiny_overrides, monkeypatch, logger):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a wandb key
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_cfg(["experiment=student", f"logger={logger}", *tiny_overrides], tmp_path)
    run_job(cfg)
    run_dir = tmp_path / "run"
    if logger == "wandb":
        assert cfg.logger.wandb.offline is True
        # the offline run's transaction log holds the config it was given
        (log,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
        blob = log.read_bytes()
        assert b"max_examples" in blob and b"optimized_metric" in blob and b"teacher" in blob
    else:
        assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
