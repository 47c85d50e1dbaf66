"""`trainer=ddp_cpu`: 2-process distillation matches one process with the same global batch."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import TINY, TINY_TEACHER
from tests.runs.test_resume import cli, env

BASE = [t for t in TINY if not t.startswith(("data.batch_size", "trainer.max_steps"))]
ARGS = ["experiment=distill", *BASE, *TINY_TEACHER, "trainer.max_steps=30"]
ARGS += ["distill.teacher_outputs=cached"]


@pytest.mark.slow
def test_two_process_distillation_matches_one_process(tmp_path):
    root = tmp_path / "out"
    ddp = subprocess.run(
        cli(
            [*ARGS, "trainer=ddp_cpu", "data.batch_size=16", "hydra.run.dir=" + str(root / "ddp")],
            root,
        ),
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        cli([*ARGS, "data.batch_size=32", "hydra.run.dir=" + str(root / "single")], root),
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    # the launcher trained the teacher and built the cache; the rank-1 process and the
    # single-process run found both (one registry entry, one training)
    assert len(list((root / "teachers").glob("*/registry.json"))) == 1
    assert "training it now" in ddp.stdout and "training it now" not in single.stdout
    m_ddp = json.loads((root / "ddp" / "metrics.json").read_text())
    m_one = json.loads((root / "single" / "metrics.json").read_text())
    assert m_ddp["trainer/global_step"] == m_one["trainer/global_step"] == 30
    print(f"val/ppl ddp_cpu {m_ddp['val/ppl']:.4f} single {m_one['val/ppl']:.4f}")
    assert abs(m_ddp["val/ppl"] / m_one["val/ppl"] - 1) < 0.02
    # rank 0 alone wrote the run's files; rank 1 only its log
    assert (root / "ddp" / "train_ddp_process_1.log").is_file()
    assert json.loads((root / "ddp" / "status.json").read_text())["state"] == "finished"
