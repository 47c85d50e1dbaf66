"""The attention plug-ins: registry, masks and normalisation, multihead against scaled
dot-product attention, the graph over the context's turns, export, old hyperparameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distillab.data.turns import source_turns
from distillab.decoding import Greedy
from distillab.models import Seq2Seq
from distillab.models.attention import ATTENTIONS, attention_class, build_attention
from distillab.models.attention.additive import AdditiveAttention
from distillab.models.attention.graph import GraphTurnAttention, masked_softmax, turn_adjacency
from distillab.models.build import build_model

SELF, OTHER, PAD = 4, 5, 0
KINDS = ["additive", "multiplicative", "multihead", "graph"]


def sources() -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sources: 3 turns; a first turn cut (no marker) + 2; one turn."""
    src = torch.tensor(
        [
            [OTHER, 9, 9, SELF, 8, OTHER, 7, 7, 7],
            [9, 9, SELF, 8, 8, OTHER, 7, PAD, PAD],
            [OTHER, 6, 6, PAD, PAD, PAD, PAD, PAD, PAD],
        ]
    )
    return src, src != PAD


def test_registry_names_and_unknown_kind() -> None:
    assert set(KINDS) <= set(ATTENTIONS)
    assert attention_class("distillab.models.attention.additive.AdditiveAttention") is (
        AdditiveAttention
    )
    with pytest.raises(ValueError, match=r"attention='dot' is not allowed; choose one of"):
        build_attention("dot", 4, 4)
    with pytest.raises(ValueError, match="attention_heads is not an option of"):
        build_attention("additive", 8, 8, heads=2)
    with pytest.raises(ValueError, match="attention_heads=3 must divide the hidden size"):
        build_attention("multihead", 8, 8, heads=3)


def test_source_turns_read_off_the_speaker_markers() -> None:
    src, mask = sources()
    turns = source_turns(src, mask, SELF, OTHER)
    assert turns.token_turn.tolist() == [
        [0, 0, 0, 1, 1, 2, 2, 2, 2],
        [0, 0, 1, 1, 1, 2, 2, -1, -1],
        [0, 0, 0, -1, -1, -1, -1, -1, -1],
    ]
    # 0 other, 1 self; row 1's cut first turn: the opposite of the next (self) turn
    assert turns.speaker.tolist() == [[0, 1, 0], [0, 1, 0], [0, -1, -1]]
    wide = source_turns(src, mask, SELF, OTHER, n_turns=9)  # an export's bound: same turns
    assert torch.equal(wide.token_turn, turns.token_turn)
    assert torch.equal(wide.speaker[:, :3], turns.speaker) and (wide.speaker[:, 3:] == -1).all()


def test_turn_adjacency_joins_adjacent_and_same_speaker_turns_only() -> None:
    speaker = torch.tensor([[0, 1, 0, 1, -1]])  # 4 real turns, one padded
    adj = turn_adjacency(speaker)[0]
    want = torch.tensor(
        [
            [1, 1, 1, 0, 0],  # 0: itself, 1 (adjacent), 2 (same speaker)
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [0, 1, 1, 1, 0],  # 3: 2 (adjacent), 1 (same speaker), not 0
            [0, 0, 0, 0, 0],  # the padded turn has no edge
        ],
        dtype=torch.bool,
    )
    assert torch.equal(adj, want)


def attend(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    att = build_attention(kind, 8, 8, **({"heads": 2} if kind == "multihead" else {}))
    src, mask = sources()
    keys = torch.randn(3, 9, 8)
    turns = source_turns(src, mask, SELF, OTHER)
    query = torch.randn(3, 4, 8)
    return att, query, keys, mask, turns


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_distributions_with_zero_on_pads(kind: str) -> None:
    att, query, keys, mask, turns = attend(kind)
    ctx, w = att(query, att.precompute(keys, mask, turns))
    assert ctx.shape == (3, 4, 8) and w.shape == (3, 4, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4))
    assert (w.masked_select(~mask.unsqueeze(1).expand_as(w)) == 0).all()
    assert (w.masked_select(mask.unsqueeze(1).expand_as(w)) > 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_reaches_every_parameter(kind: str) -> None:
    att, query, keys, mask, turns = attend(kind)
    keys.requires_grad_(True)
    ctx, _ = att(query, att.precompute(keys, mask, turns))
    ctx.pow(2).sum().backward()
    for name, p in att.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert keys.grad is not None and keys.grad[mask].abs().sum() > 0


def test_multihead_with_one_head_is_scaled_dot_product_attention() -> None:
    att, query, keys, mask, _ = attend("multihead")
    att = build_attention("multihead", 8, 8, heads=1)
    ctx, w = att(query, att.precompute(keys, mask))
    q, k, v = att.query_proj(query), att.key_proj(keys), att.value_proj(keys)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1))
    torch.testing.assert_close(ctx, att.out_proj(want))
    scores = (q @ k.transpose(1, 2)) / math.sqrt(8)
    torch.testing.assert_close(w, torch.softmax(scores.masked_fill(~mask[:, None], -1e9), -1))


def test_multihead_weights_are_the_mean_of_its_heads() -> None:
    att, query, keys, mask, _ = attend("multihead")
    _, w = att(query, att.precompute(keys, mask))
    q = att.query_proj(query).view(3, 4, 2, 4).transpose(1, 2)
    k = att.key_proj(keys).view(3, 9, 2, 4).transpose(1, 2)
    per_head = torch.softmax(
        (q @ k.transpose(-1, -2) / 2.0).masked_fill(~mask[:, None, None], -1e9), -1
    )
    torch.testing.assert_close(w, per_head.mean(1))


def test_graph_token_weights_are_modulated_by_turn_weights() -> None:
    """softmax(q.(Wk_j + c_turn(j))) is the textbook form: token weights times the weight of
    their turn (a masked softmax over the row's real turns), renormalised."""
    att, query, keys, mask, turns = attend("graph")
    assert isinstance(att, GraphTurnAttention)
    _, w = att(query, att.precompute(keys, mask, turns))
    c, member = att.turn_keys(keys, turns)
    beta = masked_softmax(query @ c.transpose(1, 2), (turns.speaker >= 0).unsqueeze(1))
    assert (beta[2, :, 1:] == 0).all()  # padded turns get zero weight
    token_scores = (query @ att.key_proj(keys).transpose(1, 2)).masked_fill(~mask[:, None], -1e9)
    modulated = torch.softmax(token_scores, -1) * (beta @ member)  # [B, Tq, Ts]
    torch.testing.assert_close(w, modulated / modulated.sum(-1, keepdim=True))


def test_graph_model_reads_turns_from_the_batch_or_the_markers() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(
        20, PAD, emb_dim=8, hidden_size=8, attention="graph", self_id=SELF, other_id=OTHER
    ).eval()
    src, mask = sources()
    tgt = torch.randint(6, 20, (3, 4))
    given = model(src, mask, tgt, turns=source_turns(src, mask, SELF, OTHER))
    derived = model(src, mask, tgt)
    torch.testing.assert_close(given.logits, derived.logits)
    with pytest.raises(ValueError, match="speaker marker ids"):
        Seq2Seq(20, PAD, emb_dim=8, hidden_size=8, attention="graph")


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_old_hyperparameters_rebuild_the_same_network(kind: str) -> None:
    """A checkpoint written before the plug-ins (hparams: attention as a name, no new keys)
    rebuilds the same parameter names and shapes."""
    hp = {
        "model": {
            "_target_": "distillab.models.Seq2Seq",
            "emb_dim": 8,
            "hidden_size": 16,
            "attention": kind,
        },
        "vocab_size": 30,
        "pad_id": 0,
    }
    model = build_model(hp)
    names = {k for k in model.state_dict() if k.startswith("decoder.attention.")}
    want = {"decoder.attention.key_proj.weight"}
    if kind == "additive":
        want |= {"decoder.attention.key_proj.bias", "decoder.attention.query_proj.weight"}
        want |= {"decoder.attention.v.weight"}
    assert names == want
    model.load_state_dict(build_model(hp).state_dict())  # loads strictly


@pytest.mark.parametrize("kind", ["multihead", "graph"])
def test_fp32_export_decodes_the_same_greedy_tokens(kind: str, tmp_path) -> None:
    from distillab.export.onnx import export_model
    from distillab.export.runtime import OnnxSeq2Seq
    from tests.export.test_export import SETTINGS, FakeTokenizer, inputs

    torch.manual_seed(0)
    model = Seq2Seq(
        300, 0, emb_dim=16, hidden_size=32, attention=kind, attention_heads=4 if kind == "multihead" else None,
        self_id=SETTINGS["self_id"], other_id=SETTINGS["other_id"],
    ).eval()  # fmt: skip
    out = export_model(model, tmp_path, FakeTokenizer(), SETTINGS)
    src, mask = inputs()
    ref = Greedy()(model, src, mask, bos_id=2, eos_id=3, max_len=10).numpy()
    hyp = OnnxSeq2Seq(out, "fp32").greedy(src.numpy(), mask.numpy(), 10)
    assert hyp.shape == ref.shape and np.array_equal(hyp, ref)


def test_collate_carries_turns_only_when_asked() -> None:
    from distillab.data.batching import collate

    src, mask = sources()
    items = [
        {"index": i, "src": s[m].numpy(), "head_src": None, "conv": None, "tgt": [7, 8]}
        | {"topic": 0, "rating": float("nan")}
        for i, (s, m) in enumerate(zip(src, mask, strict=True))
    ]
    for it in items:
        it["head_src"] = it["src"]
    assert collate(items, PAD, 2, 3).turns is None
    batch = collate(items, PAD, 2, 3, speakers=(SELF, OTHER))
    want = source_turns(src, mask, SELF, OTHER)
    assert torch.equal(batch.turns.token_turn, want.token_turn)
    assert torch.equal(batch.turns.speaker, want.speaker)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multihead", "graph"])
def test_tiny_training_run_writes_metrics(kind: str, tmp_path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import TINY

    cmd = [sys.executable, "-m", "distillab.train", f"paths.output_root={tmp_path}"]
    cmd += ["experiment=student", *TINY, f"model.attention={kind}"]
    cmd += ["+model.attention_heads=2"] if kind == "multihead" else []
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics_file,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert 1.0 < metrics["val/ppl"] < 1e6 and metrics["trainer/global_step"] == 6
    config = (metrics_file.parent / "config.yaml").read_text()
    assert f"attention: {kind}" in config
