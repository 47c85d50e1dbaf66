"""Transformer students through the compression step at tiny size: `compress=hybrid` (one
magnitude step, int8, export) whose fp32 export decodes the PyTorch model's greedy tokens,
and structured pruning of heads and feed-forward units whose saved checkpoint is smaller and
loads; `distillab-chat` answers from the export."""

import json

import pytest
import torch

from distillab.chat.replier import load_replier
from distillab.checkpoint import load_model
from distillab.compress.measure import param_counts
from distillab.train import run_job
from distillab.validate import validate
from tests.conftest import TINY, compose_cfg

DATA = [t for t in TINY if not t.startswith("model.")]
SIZES = ["model.hidden_size=16", "model.attention_heads=4", "model.ffn_size=32"]
STUDENTS = {
    "hf_seq2seq": ["model=hf_seq2seq", *SIZES, "model.enc_layers=1", "model.dec_layers=2"],
    "hf_causal": ["model=hf_causal", *SIZES, "model.layers=2"],
}


def run(student: str, overrides: list[str], tmp_path) -> dict:
    cfg = compose_cfg(
        [*DATA, *STUDENTS[student], "~logger", "compress.eval_inputs=6", *overrides], tmp_path
    )
    validate(cfg)
    run_job(cfg)
    return json.loads((tmp_path / "run" / "compression.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("student", ["hf_seq2seq", "hf_causal"])
def test_hybrid_transformer_student_export_agrees_with_pytorch(student, tmp_path):
    r = run(student, ["compress=hybrid", "compress.sparsity=0.6"], tmp_path)
    assert abs(r["sparsity"] - 0.6) <= 0.01  # every Linear / Conv1D weight, not the tied output
    assert r["export_agreement_fp32"] == 1.0  # greedy tokens of the compressed PyTorch model
    assert 0.0 <= r["export_agreement_int8"] <= 1.0
    assert r["size_bytes_compressed"] < r["size_bytes_fp32_gzip"]
    assert r["params_non_embedding"] < r["params_total"]
    for key in ("fp32", "compressed", "eager_int8", "onnx_fp32", "onnx_int8"):
        assert r[f"latency_ms_{key}"] > 0
    model = load_model(str(tmp_path / "run" / "compressed" / "model.ckpt"))
    # the magnitude step zeroed 60% of a feed-forward layer's weights
    ffn = [p for n, p in model.named_parameters() if n.endswith(("fc1.weight", "c_fc.weight"))]
    assert float((ffn[0] == 0).float().mean()) == pytest.approx(0.6, abs=0.01)
    bot = load_replier(str(tmp_path / "run" / "export"), {"_target_": "distillab.decoding.Greedy"})
    ids = bot.tokenizer("hello how are you", add_special_tokens=False)["input_ids"]
    assert all(0 <= t < bot.model.vocab_size for t in bot.reply(ids))


@pytest.mark.slow
def test_structured_heads_and_ffn_shrink_the_saved_model(tmp_path):
    over = ["compress=prune", "compress.mode=heads", "compress.schedule=null"]
    r = run("hf_causal", [*over, "compress.sparsity=0.5", "compress.finetune_steps=2"], tmp_path)
    # half the heads and units of each layer: half of every attention / MLP weight is gone
    assert r["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert r["params_before"] - r["params_total"] >= 0.5 * 2 * 2048  # 2 layers of 2048
    assert r["export_agreement_fp32"] == 1.0
    small = load_model(str(tmp_path / "run" / "compressed" / "model.ckpt"))
    assert [g.size for g in small.unit_groups()] == [2, 16, 2, 16]  # heads, units per layer
    assert param_counts(small)["total"] == r["params_total"]
    with torch.no_grad():
        src = torch.randint(6, 50, (2, 5))
        out = small(src, torch.ones_like(src, dtype=torch.bool), src[:, :3])
    assert out.logits.shape == (2, 3, small.vocab_size)
