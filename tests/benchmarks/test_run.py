"""Smoke test of benchmarks/run.py at tiny size: every reported number exists and is sane."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_runs_and_reports_every_key(tmp_path, capsys):
    bench = load_bench()
    out = tmp_path / "bench.json"
    tiny = [o for o in TINY if not o.startswith(("trainer.", "threads"))]
    args = ["--steps", "2", "--warmup", "1", "--repeats", "2", "--decodes", "1", "--threads", "1"]
    bench.main([*args, "--cache-dir", str(tmp_path / "cache"), "--json", str(out), *tiny])
    r = json.loads(out.read_text())
    for name in ("teacher", "student", "student_raw", "distill_online", "distill_cached"):
        assert r[f"tokens_per_s.{name}"] > 0
    presets = ("preset_teacher", "preset_student")
    presets += tuple(f"{p}_default_vocab" for p in presets)
    for name in ("teacher", "student", "student_int8", *presets):
        assert r[f"latency_ms.{name}"] > 0 and r[f"latency_ms.{name}_b32"] > 0
    assert len(r["rounds.tokens_per_s.student"]) == 2
    ratios = ("framework_over_raw", "distill_cached_over_student")
    ratios += ("preset_default_vocab_teacher_over_student_latency",)
    for key in (*(f"ratio.{k}" for k in ratios), "mfu.train"):
        assert math.isfinite(r[key]) and r[key] > 0
    for pair in ("", "preset_", "preset_default_vocab_"):  # each teacher out-computes its student
        assert r[f"ratio.{pair}teacher_over_student_decode_flops"] > 1
    for model in ("teacher", "student"):  # compression and deployment rows (issue 11)
        for runtime in ("eager", "onnx_fp32", "onnx_int8"):
            assert r[f"latency_ms_per_token.{model}.{runtime}"] > 0
            assert r[f"ratio_to_bound.{model}.{runtime}"] > 1
    assert r["ratio.student_eager_over_onnx"] > 0
    assert "framework / plain loop" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_overhead_benchmark_reports_every_phase(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "sweep_overhead", ROOT / "benchmarks" / "sweep_overhead.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tiny = [o for o in TINY if not o.startswith(("trainer.", "threads", "model."))]
    args = ["--output-root", str(tmp_path), "--jobs", "1", "--student-steps", "2"]
    r = bench.main([*args, "--teacher-steps", "2", *tiny, "teacher.train.model.hidden_size=32"])
    phases = ("process start", "imports", "compose + validate", "data from cache", "teacher lookup")
    for phase in phases:
        assert r[f"overhead_s.{phase}"] > 0, phase
    for phase in phases[1:]:  # timed inside the job's process: its CPU time too
        assert 0 < r[f"cpu_s.{phase}"], phase
    assert r["overhead_s.total"] == pytest.approx(sum(r["rounds"][0][p] for p in phases))
    assert 0 < r["ratio.overhead_over_student_job"] and r["student_job.wall_s"] > 0
    assert "| **total** |" in capsys.readouterr().out
