"""The transformer families' ONNX export (encoder + key/value-cache step) decodes as the
PyTorch model does, greedy and beam, before and after structured pruning; its runtime needs no
torch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distillab.compress import HeadPruning
from distillab.decoding import Beam, Greedy
from distillab.export.families import export_any
from distillab.export.runtime import OnnxSeq2Seq
from distillab.export.runtime_kv import OnnxKV, open_export
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq
from tests.export.test_export import SETTINGS, FakeTokenizer, inputs

ROOT = Path(__file__).resolve().parents[2]
SIZES = dict(hidden_size=16, attention_heads=4, ffn_size=32, dropout=0.0)
FAMILIES = {
    "seq2seq": lambda: HFSeq2Seq(300, 0, enc_layers=1, dec_layers=2, **SIZES),
    "causal": lambda: HFCausal(300, 0, layers=2, **SIZES),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = FAMILIES[request.param]().eval()
    out = export_any(model, tmp_path_factory.mktemp("export"), FakeTokenizer(), SETTINGS)
    assert not model.training
    return model, out


def test_fp32_greedy_and_beam_match_pytorch(exported):
    model, out = exported
    src, mask = inputs()  # padded rows of different lengths, one of a single token
    rt = open_export(out, "fp32")
    assert isinstance(rt, OnnxKV)
    ref = Greedy()(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = rt.greedy(src.numpy(), mask.numpy(), 10)
    assert hyp.shape == ref.shape and (hyp == ref).all()
    ref = Beam(beam_size=3)(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = rt.beam(src.numpy(), mask.numpy(), 10, beam_size=3)
    assert hyp.shape == ref.shape and (hyp == ref).all()


def test_step_logits_match_and_the_cache_grows(exported):
    model, out = exported
    src, mask = inputs()
    rt = open_export(out, "fp32")
    state = rt.encode(src.numpy(), mask.numpy())
    with torch.no_grad():
        ref_state = model.encode(src, mask)
        prev = torch.full((5,), 2)
        for _ in range(3):
            ref, ref_state = model.step(prev, ref_state)
            logits, state = rt.step(prev.numpy(), state)
            assert torch.allclose(torch.from_numpy(logits), ref, atol=1e-4)
            prev = ref.argmax(-1)
    past = state["past_key_0"]
    context = 0 if "enc" in state else src.size(1)
    assert past.shape[0] == 5 and past.shape[2] == context + 3


def test_int8_graphs_are_smaller_and_decode(exported):
    _, out = exported
    config = json.loads((out / "config.json").read_text())
    size = {
        p: sum((out / f).stat().st_size for f in config["files"][p].values())
        for p in config["files"]
        if p != "tokenizer"
    }
    assert size["int8"] < size["fp32"]
    src, mask = inputs()
    assert open_export(out, "int8").greedy(src.numpy(), mask.numpy(), 10).shape[0] == 5


def test_export_of_a_head_pruned_model_matches_it(tmp_path):
    torch.manual_seed(1)
    model = FAMILIES["seq2seq"]().eval()
    small = HeadPruning().prune(model, 0.5).eval()
    assert [g.size for g in small.unit_groups()] == [2, 16, 2, 2, 16, 2, 2, 16]
    out = export_any(small, tmp_path, FakeTokenizer(), SETTINGS)
    src, mask = inputs()
    ref = Greedy()(small, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = open_export(out).greedy(src.numpy(), mask.numpy(), 10)
    assert hyp.shape == ref.shape and (hyp == ref).all()


def test_runtime_replies_without_importing_torch(exported):
    _, out = exported
    code = (
        "import sys\n"
        "from distillab.export.runtime_kv import open_export\n"
        f"bot = open_export({str(out)!r}, 'int8', threads=1)\n"
        "a = bot.reply(['w7 w8 w9', 'w10 w11'])\n"
        "b = bot.reply(['w7 w8 w9', 'w10 w11'], beam_size=3)\n"
        "assert isinstance(a, str) and isinstance(b, str)\n"
        "print('torch' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_open_export_keeps_the_gru_runtime_for_a_gru_export(tmp_path):
    from distillab.models import Seq2Seq

    out = export_any(Seq2Seq(300, 0, emb_dim=8, hidden_size=8), tmp_path, FakeTokenizer(), SETTINGS)
    rt = open_export(out)
    assert type(rt) is OnnxSeq2Seq
