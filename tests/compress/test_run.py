"""End to end at tiny size: compressed distillation and training runs write compression.json;
distillab-eval evaluates, compresses and exports a checkpoint after training."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distillab.checkpoint import load_model
from distillab.train import run_job
from distillab.validate import validate
from tests.conftest import TINY, TINY_TEACHER, compose_cfg

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "params_before", "params_total", "params_nonzero", "params_non_embedding_before",
    "params_non_embedding", "sparsity", "sparsity_by_layer", "size_bytes_fp32", "size_bytes_fp32_gzip",
    "size_bytes_compressed", "latency_ms_fp32", "latency_ms_compressed",
    "latency_ms_eager_int8", "latency_ms_onnx_fp32", "latency_ms_onnx_int8", "metrics_before",
    "metrics_after", "retained", "export_agreement_fp32", "export_agreement_int8",
}  # fmt: skip


def run(overrides: list[str], tmp_path: Path) -> dict:
    cfg = compose_cfg([*TINY, "~logger", "compress.eval_inputs=8", *overrides], tmp_path)
    validate(cfg)
    run_job(cfg)
    return json.loads((tmp_path / "run" / "compression.json").read_text())


@pytest.mark.slow
def test_hybrid_distillation_writes_compression_json(tmp_path):
    overrides = ["experiment=distill", *TINY_TEACHER, f"paths.cache_dir={tmp_path}/cache"]
    r = run([*overrides, "compress=hybrid", "compress.sparsity=0.8"], tmp_path)
    assert set(r) == KEYS
    assert abs(r["sparsity"] - 0.8) <= 0.01
    assert r["size_bytes_compressed"] <= 0.4 * r["size_bytes_fp32"]
    # like for like (both gzip-ed): the pruned, int8 model is still smaller
    assert r["size_bytes_compressed"] < r["size_bytes_fp32_gzip"] < r["size_bytes_fp32"]
    assert r["export_agreement_fp32"] == 1.0  # the trained student's export, held-out contexts
    assert 0.0 <= r["export_agreement_int8"] <= 1.0
    assert r["params_nonzero"] < 0.5 * r["params_total"]
    assert r["metrics_after"].keys() == r["metrics_before"].keys()
    assert "val/ppl" in r["retained"]
    for key in ("fp32", "compressed", "eager_int8", "onnx_fp32", "onnx_int8"):
        assert r[f"latency_ms_{key}"] > 0
    run_dir = tmp_path / "run"
    assert (run_dir / "metrics.json").is_file()
    config = json.loads((run_dir / "export" / "config.json").read_text())
    assert config["max_len"] == 12 and (run_dir / "export" / "step.int8.onnx").is_file()
    model = load_model(str(run_dir / "compressed" / "model.ckpt"))
    assert float((model.decoder.gru.weight_hh_l0 == 0).float().mean()) == pytest.approx(
        0.8, abs=0.01
    )


@pytest.mark.slow
def test_gradual_pruning_during_training_then_structured_eval(tmp_path):
    schedule = ["compress.schedule.start_step=1", "compress.schedule.end_step=4"]
    r = run(
        ["compress=prune", "compress.sparsity=0.5", "compress.export=false", *schedule], tmp_path
    )
    assert abs(r["sparsity"] - 0.5) <= 0.01
    assert r["latency_ms_onnx_fp32"] is None and r["export_agreement_fp32"] is None
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert not any(k.endswith("_orig") for k in state)  # checkpoints hold plain weights
    zeros = float((state["model.decoder.gru.weight_hh_l0"] == 0).float().mean())
    assert zeros >= 0.45  # the schedule reached its end (step 4) within the 6 steps

    out = tmp_path / "eval"
    cmd = [
        sys.executable, "-m", "distillab.evaluate", f"ckpt={ckpt}", "compress=prune",
        "compress.mode=structured", "compress.schedule=null", "compress.sparsity=0.5",
        "compress.eval_inputs=4", f"paths.output_root={tmp_path}/outputs", f"hydra.run.dir={out}",
    ]  # fmt: skip
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((out / "compression.json").read_text())
    assert r["params_non_embedding"] <= 0.5 * r["params_non_embedding_before"]
    assert r["export_agreement_fp32"] == 1.0
    assert json.loads((out / "metrics.json").read_text())["val/ppl"] > 0
    small = load_model(str(out / "compressed" / "model.ckpt"))
    assert small.hidden_size == 16  # the saved model config says the new size

    for args, message in [
        ([*cmd[:4], "compress=hybrid", "compress.sparsity=1.5"], "compress.sparsity=1.5 is out"),
        ([*cmd[:3], "compress=hybrid"], "ckpt is required"),
        ([*cmd[:4], "compress=prune"], "set compress.schedule=null"),
    ]:
        bad = subprocess.run(
            [*args, f"hydra.run.dir={out}2"], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr[-2000:]
    assert not (out.parent / "eval2" / "metrics.json").exists()  # refused before any work


@pytest.mark.slow
def test_eval_with_plots_writes_attention_heatmaps_of_a_distilled_student(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TINY_TEACHER, "~logger"], tmp_path)
    run_job(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval"
    cmd = [
        sys.executable, "-m", "distillab.evaluate", f"ckpt={ckpt}", "plots=true",
        "num_dialogues=2", f"paths.output_root={tmp_path}/outputs", f"hydra.run.dir={out}",
    ]  # fmt: skip
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = sorted((out / "attention").glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["val/attention_js"] <= 1.0  # student vs its (registry) teacher
