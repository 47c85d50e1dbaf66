"""Smoke test of benchmarks/run.py at tiny size: every reported number exists and is sane."""

import importlib.util
import json
import statistics
from operator import truediv
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
    assert (r["meta.timed_steps"], r["meta.repeats"], r["meta.threads"]) == (2, 2, 1)
    for name in ("teacher", "student", "student_raw", "distill_online", "distill_cached"):
        assert r[f"tokens_per_s.{name}"] > 0
    # the timed runs: the best of the interleaved rounds; ratios: medians of same-round ratios
    rounds = {k[len("rounds.tokens_per_s.") :]: v for k, v in r.items() if k.startswith("rounds.")}
    assert set(rounds) == {"student", "student_raw", "distill_cached"}
    assert 0 < r["cache.bytes_per_token"] <= 100  # the default (compact) codec
    for name, values in rounds.items():
        assert len(values) == 2 and r[f"tokens_per_s.{name}"] == max(values)
    s, raw, c = rounds["student"], rounds["student_raw"], rounds["distill_cached"]
    assert r["ratio.framework_over_raw"] == pytest.approx(statistics.median(map(truediv, s, raw)))
    assert r["ratio.distill_cached_over_student"] == pytest.approx(
        statistics.median(map(truediv, s, c))
    )
    for name, mfu in (("student", "mfu.train"), ("teacher", "mfu.train_teacher")):
        flops = r[f"flops_per_token.{name}"] * r[f"tokens_per_s.{name}"]
        assert r[mfu] == pytest.approx(flops / r["peak_flops"]) and 0 < r[mfu] < 1
    assert r["flops_per_token.teacher"] > r["flops_per_token.student"]
    presets = ("preset_teacher", "preset_student")
    presets += tuple(f"{p}_default_vocab" for p in presets)
    for name in ("teacher", "student", "student_int8", *presets):
        assert r[f"latency_ms.{name}"] > 0 and r[f"latency_ms.{name}_b32"] > 0
    pairs = {
        "": ("teacher", "student"),
        "preset_": presets[:2],
        "preset_default_vocab_": presets[2:],
    }
    for pair, (t, st) in pairs.items():  # each teacher out-computes its student
        latency = r[f"latency_ms.{t}"] / r[f"latency_ms.{st}"]
        assert r[f"ratio.{pair}teacher_over_student_latency"] == pytest.approx(latency)
        flops = r[f"flops_per_decode.{t}"] / r[f"flops_per_decode.{st}"]
        assert r[f"ratio.{pair}teacher_over_student_decode_flops"] == pytest.approx(flops)
        assert flops > 1
    assert 0 < r["bytes.student_int8"] < r["bytes.student"]  # int8 weights take less room
    for model in ("teacher", "student"):  # compression and deployment rows (issue 11)
        for runtime in ("eager", "onnx_fp32", "onnx_int8"):
            ms = r[f"latency_ms_per_token.{model}.{runtime}"]
            bound = ms / r[f"bound_ms_per_token.{model}"]
            assert ms > 0 and r[f"ratio_to_bound.{model}.{runtime}"] == pytest.approx(bound)
            assert bound > 1
    eager = r["latency_ms_per_token.student.eager"]
    onnx = r["latency_ms_per_token.student.onnx_fp32"]
    assert r["ratio.student_eager_over_onnx"] == pytest.approx(eager / onnx)
    # the printed table: a header, then one 4-column row per figure, each with its value
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("|")]
    assert lines[0] == "| metric | value | target | met |" and len(lines) >= 15
    assert all(x.count(" | ") == 3 and x.split(" | ")[1].strip() for x in lines[2:])
    (fw,) = [x for x in lines if x.startswith("| framework / plain loop throughput |")]
    assert f"{r['ratio.framework_over_raw']:.3f}x" in fw
    assert fw.endswith("| yes |" if r["ratio.framework_over_raw"] >= 0.95 else "| NO |")


@pytest.mark.slow
def test_benchmark_of_the_transformer_quickstart_skips_the_gru_presets(tmp_path, capsys):
    """--experiment quickstart_transformer: the same figures for its transformer students
    (int8 and export rows included); the GRU model presets are skipped, said in one row."""
    bench = load_bench()
    out = tmp_path / "bench.json"
    data = [o for o in TINY if o.startswith("data.")]
    sizes = ["model.hidden_size=16", "model.ffn_size=32", "teacher.train.model.hidden_size=32"]
    args = ["--steps", "2", "--warmup", "1", "--repeats", "2", "--decodes", "1", "--threads", "1"]
    args += ["--experiment", "quickstart_transformer", "--cache-dir", str(tmp_path / "cache")]
    bench.main([*args, "--json", str(out), *data, *sizes])
    r = json.loads(out.read_text())
    assert r["meta.student_model"].endswith("HFSeq2Seq")
    assert r["ratio.framework_over_raw"] > 0 and r["tokens_per_s.student_raw"] > 0
    for name in ("teacher", "student", "student_int8"):
        assert r[f"latency_ms.{name}"] > 0 and r[f"latency_ms.{name}_b32"] > 0
    assert r["latency_ms_per_token.student.onnx_fp32"] > 0
    assert not [k for k in r if "preset" in k]
    table = capsys.readouterr().out
    assert "| model presets gru_teacher / gru_student | skipped: " in table


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
