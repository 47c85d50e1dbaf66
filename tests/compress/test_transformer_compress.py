"""Compression pieces on tiny transformer students: which weights magnitude pruning selects
(BART's Linear, GPT-2's Conv1D, never the tied output layer), one-shot and gradual masks,
int8, and structured removal of heads and feed-forward units (exact, and rebuilt from a
checkpoint's `kept_units`)."""

import pytest
import torch
from transformers.pytorch_utils import Conv1D

from distillab.compress import GradualPruning, HeadPruning, MagnitudePruning, fold, quantize_int8
from distillab.compress.measure import param_counts, serialized_bytes, sparsity
from distillab.compress.pruning import prunable
from distillab.errors import ConfigError
from distillab.models import Seq2Seq
from distillab.models.build import build_model
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq
from distillab.models.transformer_units import Heads, head_index, rows

SIZES = dict(hidden_size=16, attention_heads=4, ffn_size=32, dropout=0.0)


def seq2seq() -> HFSeq2Seq:
    torch.manual_seed(0)
    return HFSeq2Seq(300, 0, enc_layers=1, dec_layers=2, **SIZES).eval()


def causal() -> HFCausal:
    torch.manual_seed(0)
    return HFCausal(300, 0, layers=2, **SIZES).eval()


def forward(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(6, 300, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.no_grad():
        return model(src, mask, torch.randint(6, 300, (2, 5), generator=g)).logits


def test_prunable_covers_linear_and_conv1d_but_not_the_tied_output():
    s2s = [q for _, _, q in prunable(seq2seq())]
    assert "net.model.decoder.layers.1.encoder_attn.q_proj.weight" in s2s
    assert "net.model.encoder.layers.0.fc2.weight" in s2s
    assert not any("lm_head" in q or "shared" in q for q in s2s)
    gpt = prunable(causal())
    names = [q for _, _, q in gpt]
    assert "net.transformer.h.0.attn.c_attn.weight" in names
    assert "net.transformer.h.1.mlp.c_proj.weight" in names
    assert any(isinstance(m, Conv1D) for m, _, _ in gpt) and "net.lm_head.weight" not in names
    assert "net.transformer.wte.weight" in [q for _, _, q in prunable(causal(), embeddings=True)]


@pytest.mark.parametrize("make", [seq2seq, causal])
def test_one_shot_and_gradual_magnitude_pruning(make):
    model = make()
    MagnitudePruning().prune(model, 0.3)
    MagnitudePruning().prune(model, 0.7)  # a later, higher step keeps earlier zeros
    fold(model)
    overall, by_layer = sparsity(make(), model)
    assert overall == pytest.approx(0.7, abs=0.01) and min(by_layer.values()) > 0.69
    tied = model.net.get_output_embeddings().weight
    assert tied is model.net.get_input_embeddings().weight  # still tied, and untouched:
    assert torch.equal(tied, make().net.get_output_embeddings().weight)
    assert torch.isfinite(forward(model)).all()
    counts = param_counts(model)
    assert counts["nonzero"] < counts["total"] and counts["non_embedding"] < counts["total"]

    cb, module = GradualPruning(MagnitudePruning(), 0.5, 0, 4, 2), torch.nn.Module()
    module.model = make()
    cb.update(module, 0)
    assert cb.current == 0.0
    cb.update(module, 2)
    assert sparsity(make(), module.model)[0] == pytest.approx(cb.target(2), abs=0.01)


@pytest.mark.parametrize("make", [seq2seq, causal])
def test_int8_quantizes_every_projection(make):
    model = make()
    q = quantize_int8(model)
    assert not any(isinstance(m, Conv1D) for m in q.modules())
    assert not any(type(m) is torch.nn.Linear for m in q.modules())  # all dynamic int8
    ref, out = forward(model), forward(q)
    assert (ref.argmax(-1) == out.argmax(-1)).float().mean() > 0.8
    # at a size where weights, not per-tensor overhead, fill the file
    wide = dict(SIZES, hidden_size=64, ffn_size=256, max_positions=32)
    model = type(model)(300, 0, **wide, **({"layers": 2} if make is causal else {}))
    assert serialized_bytes(quantize_int8(model)) < 0.5 * serialized_bytes(model)


def silence(group, drop: torch.Tensor) -> None:
    """Zero what ``drop``'s units contribute (their output columns) and shrink their other
    weights, so they are the smallest and the model computes as without them."""
    with torch.no_grad():
        if isinstance(group, Heads):
            a, d = group.attn, group.head_dim
            width = group.size * d
            if group.k is None:
                rows(getattr(a, group.q))[head_index(drop, d, 3, width)] *= 1e-3
            else:
                for name in (group.q, group.k, group.v):
                    rows(getattr(a, name))[head_index(drop, d)] *= 1e-3
            rows(getattr(a, group.o))[:, head_index(drop, d)] = 0
        else:
            rows(getattr(group.owner, group.inner))[drop] *= 1e-3
            rows(getattr(group.owner, group.outer))[:, drop] = 0


@pytest.mark.parametrize("make", [seq2seq, causal])
def test_removing_silent_heads_and_units_changes_nothing(make):
    model = make()
    for g in model.unit_groups():
        silence(g, torch.randperm(g.size)[: g.size // 2])  # half of each group, anywhere
    ref = forward(model)
    small = HeadPruning().prune(model, 0.5)
    sizes = [g.size for g in small.unit_groups()]
    assert sizes == [g.size // 2 for g in model.unit_groups()]
    assert torch.allclose(forward(small), ref, atol=1e-5)
    assert param_counts(small)["total"] < param_counts(model)["total"]
    assert serialized_bytes(small) < serialized_bytes(model)


def test_a_shrunk_checkpoint_rebuilds_from_kept_units():
    model = causal()
    small = HeadPruning(heads=True, ffn=False).prune(model, 0.5)
    assert [g.size for g in small.unit_groups()] == [2, 32, 2, 32]
    hp = {
        "model": {"_target_": "distillab.models.hf_causal.HFCausal", "layers": 2, **SIZES,
                  **HeadPruning().model_config(small)},
        "vocab_size": 300, "pad_id": 0,
    }  # fmt: skip
    rebuilt = build_model(hp).eval()
    rebuilt.load_state_dict(small.state_dict())
    assert torch.equal(forward(rebuilt), forward(small))


def test_each_structured_method_refuses_the_other_family():
    with pytest.raises(ConfigError, match="compress.mode=structured"):
        HeadPruning().prune(Seq2Seq(300, 0, emb_dim=8, hidden_size=8), 0.5)
    from distillab.compress import HiddenUnitPruning

    with pytest.raises(ConfigError, match="compress.mode=heads"):
        HiddenUnitPruning().prune(causal(), 0.5)
