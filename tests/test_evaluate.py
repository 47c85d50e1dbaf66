"""`distillab-eval` given an unusable checkpoint: one line, exit 2, before any work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from distillab.train import run_job
from tests.conftest import TINY, compose_cfg
from tests.runs.test_resume import env


@pytest.mark.slow
def test_a_truncated_best_checkpoint_is_one_line_and_evaluates_once_it_is_whole(tmp_path):
    run_job(compose_cfg([*TINY, "trainer.val_check_interval=2"], tmp_path))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    good = best.read_bytes()
    best.write_bytes(good[: len(good) // 3])
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "distillab.evaluate", f"ckpt={best}",
           f"paths.output_root={tmp_path}/outputs", f"hydra.run.dir={out}"]  # fmt: skip
    bad = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-3000:]
    (line,) = [x for x in bad.stderr.splitlines() if x.strip()]
    assert line.startswith(f"distillab: error: checkpoint {best}: truncated"), line
    assert not (out / "metrics.json").exists() and not (out / "tokenizer").exists()  # no work

    best.write_bytes(good)
    ok = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["val/ppl"] > 1
