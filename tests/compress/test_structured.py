import pytest
import torch

from distillab.compress import HiddenUnitPruning
from distillab.compress.measure import param_counts
from distillab.models import ConversationBag, Seq2Seq

CONFIGS = [
    {},
    dict(enc_layers=2, dec_layers=2, attention="additive", tie_embeddings=False, num_topics=3),
    dict(rating_head=True, bidirectional=False),
    dict(num_topics=3, rating_head=True, conversation_bag=True),
]


def tiny(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(300, 0, emb_dim=16, hidden_size=32, dropout=0.0, **kw).eval()


def inputs():
    torch.manual_seed(1)
    src = torch.randint(4, 300, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    conv = ConversationBag(torch.randint(4, 300, (11,)), torch.tensor([0, 6]))
    return src, mask, torch.randint(4, 300, (2, 5)), conv


def outputs(model: Seq2Seq, src, mask, tgt, conv) -> list[torch.Tensor]:
    """The logits and whatever heads the model has."""
    out = model(src, mask, tgt, conv=conv)
    return [t for t in (out.logits, out.topic_logits, out.rating) if t is not None]


def silence_half(model: Seq2Seq) -> None:
    """Zero every weight into and out of the odd hidden units of each group: those units stay
    0 (GRU: h0 = 0, inputs 0 -> n = 0 -> h stays 0), so removing them changes nothing."""
    with torch.no_grad():
        enc = model.encoder
        for grus in (enc.fwd, enc.bwd):
            for g in grus:
                u = g.hidden_size
                for name, p in g.named_parameters():
                    p.view(3, u, -1)[:, 1::2] = 0
                    if "weight_hh" in name:
                        p[:, 1::2] = 0
        h = model.hidden_size
        for p in model.decoder.gru.parameters():
            p.view(3, h, -1)[:, 1::2] = 0
        model.bridge.weight.view(model.dec_layers, h, -1)[:, 1::2] = 0
        model.bridge.bias.view(model.dec_layers, h)[:, 1::2] = 0
        model.decoder.combine.weight[1::2] = 0
        model.decoder.combine.bias[1::2] = 0
        att = model.decoder.attention
        if att.kind == "additive":  # its inner units are the decoder's group too
            att.query_proj.weight[1::2] = 0
            att.key_proj.weight[1::2] = 0
            att.key_proj.bias[1::2] = 0


@pytest.mark.parametrize("kw", CONFIGS)
def test_removing_dead_units_keeps_outputs(kw):
    model = tiny(**kw)
    silence_half(model)
    small = HiddenUnitPruning().prune(model, 0.5)
    assert small.hidden_size == 16
    src, mask, tgt, conv = inputs()
    a, b = model(src, mask, tgt, conv=conv), small(src, mask, tgt, conv=conv)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)


@pytest.mark.parametrize("kw", CONFIGS)
def test_keeping_every_unit_is_the_same_model(kw):
    model = tiny(**kw)
    same = HiddenUnitPruning().prune(model, 0.0)
    a, b = outputs(model, *inputs()), outputs(same, *inputs())
    assert len(a) == 1 + bool(kw.get("num_topics")) + bool(kw.get("rating_head"))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_half_the_hidden_units_leaves_at_most_half_the_non_embedding_params():
    model = tiny()
    small = HiddenUnitPruning().prune(model, 0.5)
    before, after = param_counts(model), param_counts(small)
    assert after["non_embedding"] <= 0.5 * before["non_embedding"]
    assert after["total"] < before["total"]


@pytest.mark.parametrize("teacher_width", [32, 48])
def test_hidden_state_projection_narrows_to_the_kept_units(teacher_width):
    from distillab.compress.structured import narrow_projections
    from distillab.losses.terms import HiddenStateMSE

    torch.manual_seed(2)
    term = HiddenStateMSE(32, teacher_width)  # 32 == 32: no projection (an identity)
    before = term.projection if term.projection is not None else torch.nn.Identity()
    units = torch.randperm(32)[:16].sort().values
    states = torch.randn(2, 5, 32)
    dropped = torch.ones(32, dtype=torch.bool)
    dropped[units] = False
    states[..., dropped] = 0.0  # what the smaller encoder cannot say
    narrow_projections(torch.nn.ModuleDict({"hidden": term}), units, 32)
    assert term.projection.in_features == 16 and term.projection.out_features == teacher_width
    with torch.no_grad():
        torch.testing.assert_close(term.projection(states[..., units]), before(states))


def test_shrink_reports_the_encoder_units_it_keeps():
    model = tiny()
    small, units = HiddenUnitPruning().shrink(model, 0.5)
    assert small.hidden_size == 16 and len(units) == 16 and units.max() < 32
    assert HiddenUnitPruning.shrinks and not HiddenUnitPruning.gradual
