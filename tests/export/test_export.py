"""The ONNX export decodes as the PyTorch model does, and its runtime needs no torch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from distillab.decoding import Beam, Greedy
from distillab.export.onnx import export_model
from distillab.export.runtime import OnnxSeq2Seq
from distillab.models import Seq2Seq

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(
    pad_id=0, unk_id=1, bos_id=2, eos_id=3, self_id=4, other_id=5,
    context_turns=3, max_source_len=24, max_len=10,
)  # fmt: skip


class FakeTokenizer:
    """What export_model needs of a tokenizer: save_pretrained."""

    def save_pretrained(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        from tokenizers import Tokenizer, models, pre_tokenizers

        words = {w: i for i, w in enumerate("[PAD] [UNK] [BOS] [EOS] <self> <other>".split())}
        words.update({f"w{i}": i for i in range(6, 300)})
        tok = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.save(str(Path(path) / "tokenizer.json"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = Seq2Seq(300, 0, emb_dim=16, hidden_size=32, dec_layers=2).eval()
    out = export_model(model, tmp_path_factory.mktemp("export"), FakeTokenizer(), SETTINGS)
    assert not model.training  # export restores the wrapper's flag: the model stays in eval
    return model, out


def inputs():
    g = torch.Generator().manual_seed(3)
    src = torch.randint(6, 300, (5, 9), generator=g)
    mask = torch.ones(5, 9, dtype=torch.bool)
    for row, n in enumerate([9, 4, 7, 1, 6]):
        mask[row, n:] = False
    # speaker markers open the turns (graph attention reads them); row 2's first turn was cut
    src[:, 3], src[:, 6] = SETTINGS["self_id"], SETTINGS["other_id"]
    src[[0, 1, 3, 4], 0] = SETTINGS["other_id"]
    return src.masked_fill(~mask, 0), mask


def test_directory_is_self_contained(exported):
    _, out = exported
    config = json.loads((out / "config.json").read_text())
    for files in (config["files"]["fp32"], config["files"]["int8"]):
        assert all((out / f).is_file() for f in files.values())
    assert (out / config["files"]["tokenizer"]).is_file()
    int8 = sum((out / f).stat().st_size for f in config["files"]["int8"].values())
    fp32 = sum((out / f).stat().st_size for f in config["files"]["fp32"].values())
    assert int8 < fp32


def test_step_graph_has_no_avoidable_nodes(exported):
    """Every node of the step graph is an onnxruntime dispatch per token: one ``GRU`` node per
    decoder layer, not the eager step's traced cells (~15 elementwise nodes each), no
    float-to-float Cast of the logits, no multiplications by 1 (``baddbmm``'s alpha and beta)
    and one Transpose (the query), none around the GRU."""
    model, out = exported
    ops = [n.op_type for n in onnx.load(str(out / "step.onnx")).graph.node]
    assert ops.count("GRU") == model.dec_layers
    assert "Sigmoid" not in ops  # no gate arithmetic outside the GRU nodes
    assert "Cast" not in ops  # the logits are float already: no copy into a Cast output
    assert "Mul" not in ops
    assert ops.count("Transpose") == 1


@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
def test_encoder_graph_computes_the_models_encoding(tmp_path, layers, bidirectional):
    """The exported encoder is traced from its own path (``GRUEncoder._export_forward``: ONNX
    GRU nodes that read each row's length): on rows of mixed, unsorted lengths its states,
    attention memory and initial decoder state equal the eager encoder's."""
    torch.manual_seed(2)
    model = Seq2Seq(
        300, 0, emb_dim=16, hidden_size=32, enc_layers=layers, bidirectional=bidirectional
    ).eval()
    out = export_model(model, tmp_path, FakeTokenizer(), SETTINGS)
    nodes = [n.op_type for n in onnx.load(str(out / "encoder.onnx")).graph.node]
    assert nodes.count("GRU") == layers and "GatherElements" not in nodes
    src, mask = inputs()
    got = OnnxSeq2Seq(out, "fp32").encode(src.numpy(), mask.numpy())
    with torch.no_grad():
        ref = model.encode(src, mask)
    for g, r in zip(got, [*ref.memory, ref.hidden], strict=True):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "layers,attention",
    [(1, "multiplicative"), (1, "additive"), (2, "additive"), (1, "multihead"), (1, "graph")],
)
def test_step_graph_computes_the_models_step(tmp_path, layers, attention):
    """The exported step is traced from its own lean code path (``GRUDecoder._export_step``):
    its logits and hidden state equal the eager step's, for each attention kind and depth."""
    torch.manual_seed(1)
    model = Seq2Seq(
        300, 0, emb_dim=16, hidden_size=32, dec_layers=layers, attention=attention,
        self_id=SETTINGS["self_id"], other_id=SETTINGS["other_id"],
    ).eval()  # fmt: skip
    out = export_model(model, tmp_path, FakeTokenizer(), SETTINGS)
    src, mask = inputs()
    rt = OnnxSeq2Seq(out, "fp32")
    state = rt.encode(src.numpy(), mask.numpy())
    prev = torch.tensor([2, 7, 9, 11, 13])
    logits, new = rt.step(prev.numpy(), state)
    with torch.no_grad():
        ref_logits, ref = model.step(prev, model.encode(src, mask))
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new[-1], ref.hidden.numpy(), rtol=1e-4, atol=1e-5)
    feed = dict(zip(["values", "scorer", "bias", "hidden"], state, strict=True))
    (next_token,) = rt.decoder.run(["next_token"], {"prev": prev.numpy(), **feed})
    banned = ref_logits.clone()
    banned[:, [SETTINGS["pad_id"], SETTINGS["bos_id"]]] = float("-inf")
    assert (next_token == banned.argmax(-1).numpy()).all()


def test_fp32_export_decodes_the_same_greedy_tokens(exported):
    model, out = exported
    src, mask = inputs()
    ref = Greedy()(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    rt = OnnxSeq2Seq(out, "fp32")
    hyp = rt.greedy(src.numpy(), mask.numpy(), 10)
    assert hyp.shape == ref.shape and (hyp == ref).all()
    for row in range(5):  # batch 1 too (each row unpadded)
        n = int(mask[row].sum())
        one = rt.greedy(src[row : row + 1, :n].numpy(), mask[row : row + 1, :n].numpy(), 10)
        assert (one[0] == ref[row, : one.shape[1]]).all()
    fixed = rt.greedy(src.numpy(), mask.numpy(), 10, eos_id=-1)
    assert fixed.shape == (5, 10)


def test_beam_search_matches_pytorch(exported):
    model, out = exported
    src, mask = inputs()
    ref = Beam(beam_size=3)(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = OnnxSeq2Seq(out, "fp32").beam(src.numpy(), mask.numpy(), 10, beam_size=3)
    assert hyp.shape == ref.shape and (hyp == ref).all()


def test_int8_export_mostly_agrees(exported):
    model, out = exported
    src, mask = inputs()
    ref = Greedy()(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = OnnxSeq2Seq(out, "int8").greedy(src.numpy(), mask.numpy(), 10)
    n = min(hyp.shape[1], ref.shape[1])
    assert (hyp[:, :n] == ref[:, :n]).mean() > 0.3


def test_runtime_replies_without_importing_torch(exported):
    _, out = exported
    code = (
        "import sys\n"
        "from distillab.export.runtime import OnnxSeq2Seq\n"
        f"bot = OnnxSeq2Seq({str(out)!r}, 'int8', threads=1)\n"
        "a = bot.reply(['w7 w8 w9', 'w10 w11'])\n"
        "b = bot.reply(['w7 w8 w9', 'w10 w11'], beam_size=3)\n"
        "assert isinstance(a, str) and isinstance(b, str)\n"
        "print('torch' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_source_is_assembled_as_in_training(exported):
    _, out = exported
    rt = OnnxSeq2Seq(out)
    src = rt.source(["w6", "w7 w8", "w9", "w10"])  # the last 3 turns; the reply is turn 4
    # turn j gets <self> when (n - j) is even: the target's speaker said turn n-2
    assert src.tolist() == [[5, 7, 8, 4, 9, 5, 10]]
    assert rt.source(["w6 " * 40])[0].size == 24  # truncated on the left
    assert isinstance(rt, OnnxSeq2Seq) and np.issubdtype(src.dtype, np.integer)
