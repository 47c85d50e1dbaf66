"""Tests for the distillab.models package (small CPU models, fast)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from distillab.decoding import Decodable
from distillab.models import ConversationBag, GRUEncoder, Seq2Seq, Seq2SeqOutput
from distillab.models.attention import build_attention

PAD, BOS, EOS = 0, 1, 2
VOCAB = 23
ATOL = 1e-5


def make_model(attention: str = "multiplicative", seed: int = 0, **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = dict(
        vocab_size=VOCAB,
        pad_id=PAD,
        emb_dim=16,
        hidden_size=24,
        enc_layers=2,
        dec_layers=2,
        bidirectional=True,
        dropout=0.3,
        residual=True,
        attention=attention,
        tie_embeddings=True,
        num_topics=5,
        rating_head=True,
    )
    cfg.update(kw)
    return Seq2Seq(**cfg).eval()


def make_batch(lengths: list[int], width: int, seed: int, fill: int | None = PAD) -> Tensor:
    """Right-padded token batch; ``fill=None`` puts random junk tokens in the padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, VOCAB, (len(lengths), width), generator=g)
    for i, n in enumerate(lengths):
        if fill is not None:
            x[i, n:] = fill
    return x


def lengths_mask(lengths: list[int], width: int) -> Tensor:
    return torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def repad(x: Tensor, lengths: list[int], extra: int, junk: bool, seed: int = 99) -> Tensor:
    """Same sequences with ``extra`` more right padding (pad ids or random junk)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.randint(3, VOCAB, (x.size(0), x.size(1) + extra), generator=g)
    for i, n in enumerate(lengths):
        out[i, :n] = x[i, :n]
        if not junk:
            out[i, n:] = PAD
    return out


# ----------------------------------------------------------------------------- padding invariance
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
@pytest.mark.parametrize("junk", [False, True])
def test_padding_does_not_change_outputs(attention: str, junk: bool) -> None:
    model = make_model(attention)
    src_len, tgt_len = [7, 3, 5], [4, 6, 2]
    src = make_batch(src_len, 7, seed=1)
    tgt = make_batch(tgt_len, 6, seed=2)
    tgt[:, 0] = BOS
    src_mask = lengths_mask(src_len, 7)
    a = model(src, src_mask, tgt)
    src2, tgt2 = repad(src, src_len, 5, junk), repad(tgt, tgt_len, 3, junk)
    b = model(src2, lengths_mask(src_len, 12), tgt2)
    assert isinstance(b, Seq2SeqOutput)
    assert b.logits.shape == (3, 9, VOCAB) and b.attn.shape == (3, 9, 12)
    for i, n in enumerate(tgt_len):
        torch.testing.assert_close(b.logits[i, :n], a.logits[i, :n], atol=ATOL, rtol=0)
        torch.testing.assert_close(b.dec_states[i, :n], a.dec_states[i, :n], atol=ATOL, rtol=0)
        torch.testing.assert_close(b.attn[i, :n, :7], a.attn[i, :n], atol=ATOL, rtol=0)
        assert torch.all(b.attn[i, :n, src_len[i] :] == 0)
    torch.testing.assert_close(b.enc_states[:, :7], a.enc_states, atol=ATOL, rtol=0)
    assert torch.all(b.enc_states[:, 7:] == 0)
    for i, n in enumerate(src_len):
        assert torch.all(a.enc_states[i, n:] == 0)
    torch.testing.assert_close(b.topic_logits, a.topic_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(b.rating, a.rating, atol=ATOL, rtol=0)
    assert a.topic_logits.shape == (3, 5) and a.rating.shape == (3,)
    assert torch.all((a.rating > 0) & (a.rating < 1))


def test_encoder_matches_unpadded_reference_bigru() -> None:
    """Single-layer encoder == nn.GRU(bidirectional) run on each sequence without padding."""
    torch.manual_seed(0)
    enc = GRUEncoder(8, 12, num_layers=1, bidirectional=True, dropout=0.0, residual=False).eval()
    ref = nn.GRU(8, 6, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]:
            getattr(ref, name).copy_(getattr(enc.fwd[0], name))
            getattr(ref, name + "_reverse").copy_(getattr(enc.bwd[0], name))
    lengths = [5, 2, 4]
    x = torch.randn(3, 6, 8)
    out, final = enc(x, lengths_mask(lengths, 6))
    assert out.shape == (3, 6, 12) and final.shape == (1, 3, 12)
    for i, n in enumerate(lengths):
        r_out, r_h = ref(x[i : i + 1, :n])
        torch.testing.assert_close(out[i, :n], r_out[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(
            final[0, i], torch.cat([r_h[0, 0], r_h[1, 0]]), atol=ATOL, rtol=0
        )


def test_encoder_final_states_ignore_padding_multilayer() -> None:
    torch.manual_seed(0)
    enc = GRUEncoder(8, 12, num_layers=3, bidirectional=True, dropout=0.2, residual=True).eval()
    lengths = [5, 1, 3]
    x = torch.randn(3, 5, 8)
    out_a, fin_a = enc(x, lengths_mask(lengths, 5))
    x2 = torch.cat([x, torch.randn(3, 4, 8)], dim=1)
    for i, n in enumerate(lengths):
        x2[i, n:] = torch.randn(9 - n, 8)
    out_b, fin_b = enc(x2, lengths_mask(lengths, 9))
    torch.testing.assert_close(fin_b, fin_a, atol=ATOL, rtol=0)
    torch.testing.assert_close(out_b[:, :5], out_a, atol=ATOL, rtol=0)
    assert fin_a.shape == (3, 3, 12)


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_attention_masks_and_normalises(kind: str) -> None:
    torch.manual_seed(0)
    att = build_attention(kind, 10, 6)
    q, k = torch.randn(2, 4, 10), torch.randn(2, 7, 6)
    mask = lengths_mask([7, 3], 7)
    ctx, w = att(q, att.precompute(k, mask))
    assert ctx.shape == (2, 4, 6) and w.shape == (2, 4, 7)
    assert torch.all(w[1, :, 3:] == 0)
    assert torch.all(w[1, :, :3] > 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(ctx, torch.bmm(w, k))
    # the textbook scores, masked after the fact: the precomputed bias gives the same weights
    proj = att.key_proj(k)
    if kind == "additive":
        scores = att.v(torch.tanh(att.query_proj(q).unsqueeze(2) + proj.unsqueeze(1))).squeeze(-1)
    else:
        scores = q @ proj.transpose(1, 2)
    want = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
    torch.testing.assert_close(w, want)


def test_attention_fully_masked_row_is_uniform_not_nan() -> None:
    att = build_attention("multiplicative", 4, 4)
    mask = torch.zeros(1, 5, dtype=torch.bool)
    _, w = att(torch.randn(1, 2, 4), att.precompute(torch.randn(1, 5, 4), mask))
    torch.testing.assert_close(w, torch.full((1, 2, 5), 0.2))


def test_invalid_attention_kind_raises() -> None:
    with pytest.raises(ValueError, match="additive"):
        build_attention("dot", 4, 4)
    with pytest.raises(ValueError, match="multiplicative"):
        Seq2Seq(vocab_size=10, pad_id=0, emb_dim=4, hidden_size=8, attention="bogus")


# ----------------------------------------------------------------------------- decoding protocol
def setup_decoding(attention: str, seed: int) -> tuple[Seq2Seq, Tensor, Tensor]:
    model = make_model(attention, seed=seed)
    src_len = [6, 2, 4, 5]
    return model, make_batch(src_len, 6, seed=seed + 10), lengths_mask(src_len, 6)


@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_decoder_step_equals_forward_for_one_token(attention: str) -> None:
    """The generation step (GRU cells called directly) is the teacher-forced decoder at T=1."""
    model, src, mask = setup_decoding(attention, seed=3)
    dec = model.decoder
    assert dec.num_layers == 2
    with torch.no_grad():
        enc, hidden = model.encode_source(src, mask)
        memory = dec.precompute(enc, mask)
        y = torch.randn(src.size(0), 16)
        for _ in range(3):  # chained steps: the returned hidden state feeds the next one
            want, want_hidden, _, _ = dec(y.unsqueeze(1), hidden, memory)
            got, hidden = dec.step(y, hidden, memory)
            torch.testing.assert_close(got, want[:, 0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(hidden, want_hidden, rtol=1e-5, atol=1e-6)
            y = got[:, :16]


def test_model_implements_the_decoding_protocol() -> None:
    model, _, _ = setup_decoding("multiplicative", seed=0)
    assert isinstance(model, Decodable)
    assert not isinstance(nn.Linear(2, 2), Decodable)


@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_protocol_steps_equal_teacher_forced_forward(attention: str) -> None:
    """encode + step, chained over a target prefix, give ``forward``'s logits position by
    position (eval mode), for every row of a padded batch."""
    model, src, mask = setup_decoding(attention, seed=2)
    tgt = make_batch([5] * 4, 5, seed=7)
    tgt[:, 0] = BOS
    with torch.no_grad():
        want = model(src, mask, tgt).logits
        state = model.encode(src, mask)
        assert state.hidden.shape == (2, 4, 24) and state.rows.tolist() == [0, 1, 2, 3]
        for t in range(tgt.size(1)):
            logits, state = model.step(tgt[:, t], state)
            assert logits.dtype == torch.float32 and logits.shape == (4, VOCAB)
            torch.testing.assert_close(logits, want[:, t], rtol=1e-5, atol=1e-5)


def test_step_logits_are_float32_for_a_bf16_model() -> None:
    """The protocol's logits are float32 whatever the model's dtype (scores, beams, KD)."""
    model, src, mask = setup_decoding("multiplicative", seed=4)
    model = model.to(torch.bfloat16)
    with torch.no_grad():
        state = model.encode(src, mask)
        logits, _ = model.step(torch.full((src.size(0),), BOS), state)
    assert state.hidden.dtype == torch.bfloat16 and logits.dtype == torch.float32


def test_reorder_selects_repeats_and_permutes_rows() -> None:
    """Stepping a reordered state == reordering the stepped rows, whichever rows move where."""
    model, src, mask = setup_decoding("additive", seed=4)
    prev = torch.tensor([5, 6, 7, 8])
    with torch.no_grad():
        state = model.encode(src, mask)
        logits, state = model.step(prev, state)  # a non-initial hidden state
        want, _ = model.step(prev, state)
        for index in ([3, 1, 0, 2], [2, 2, 0], [0, 0, 1, 1, 2, 2, 3, 3], [1]):
            idx = torch.tensor(index)
            moved = model.reorder(state, idx)
            assert moved.rows.tolist() == index
            got, _ = model.step(prev[idx], moved)
            torch.testing.assert_close(got, want[idx], rtol=0, atol=1e-6)


def test_reorder_within_sources_keeps_the_memory() -> None:
    """Beam search's per-step reordering never moves a row to another source: the attention
    memory (the big part of the state) is reused, only the hidden state is gathered."""
    model, src, mask = setup_decoding("multiplicative", seed=4)
    with torch.no_grad():
        state = model.reorder(model.encode(src, mask), torch.arange(4).repeat_interleave(3))
        assert state.rows.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        same_sources = torch.tensor([2, 0, 0, 3, 5, 4, 6, 6, 6, 11, 9, 9])
        kept = model.reorder(state, same_sources)
        assert kept.memory is state.memory
        torch.testing.assert_close(kept.hidden, state.hidden[:, same_sources], rtol=0, atol=0)
        moved = model.reorder(state, same_sources.flip(0))
        assert moved.memory is not state.memory
        torch.testing.assert_close(moved.memory.values, state.memory.values[same_sources.flip(0)])


# ----------------------------------------------------------------------------- structure / grads
def test_tie_embeddings_reduces_parameters() -> None:
    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    kw = dict(vocab_size=500, pad_id=0, emb_dim=16, hidden_size=32)
    tied = count(Seq2Seq(**kw, tie_embeddings=True))
    untied = count(Seq2Seq(**kw, tie_embeddings=False))
    assert tied < untied
    assert untied - tied == 500 * 32 - 32 * 16 - 16  # V*H dropped, H*E+E projection added


def test_topic_head_gradients_reach_encoder_only() -> None:
    model = make_model("multiplicative").train()
    src = make_batch([5, 3], 5, seed=0)
    tgt = make_batch([3, 3], 3, seed=1)
    out = model(src, src != PAD, tgt)
    out.topic_logits.pow(2).sum().backward()
    for gru in [*model.encoder.fwd, *model.encoder.bwd]:
        assert gru.weight_ih_l0.grad is not None and gru.weight_ih_l0.grad.abs().sum() > 0
    assert model.embedding.weight.grad.abs().sum() > 0
    assert model.decoder.gru.weight_ih_l0.grad is None
    assert model.rating_head[0].weight.grad is None


def test_dropout_active_in_train_mode_only() -> None:
    model = make_model("multiplicative")
    src = make_batch([5, 3], 5, seed=0)
    tgt = make_batch([3, 3], 3, seed=1)
    mask = src != PAD
    torch.testing.assert_close(model(src, mask, tgt).logits, model(src, mask, tgt).logits)
    model.train()
    assert not torch.allclose(model(src, mask, tgt).logits, model(src, mask, tgt).logits)


def test_untied_single_layer_unidirectional_shapes() -> None:
    model = make_model(
        "additive",
        enc_layers=1,
        dec_layers=3,
        bidirectional=False,
        tie_embeddings=False,
        num_topics=0,
        rating_head=False,
    )
    src = make_batch([4, 2], 4, seed=0)
    out = model(src, src != PAD, make_batch([5, 5], 5, seed=1))
    assert out.logits.shape == (2, 5, VOCAB)
    assert out.topic_logits is None and out.rating is None
    _, h0 = model.encode_source(src, src != PAD)
    assert h0.shape == (3, 2, 24)


def test_heads_read_their_own_input_when_given() -> None:
    """`head_src` feeds the heads (a second pass of the shared encoder) and leaves the
    generation outputs alone; without it the heads read the source."""
    model = make_model()
    src, tgt = make_batch([5, 3], 6, seed=1), make_batch([4, 4], 4, seed=2)
    head = make_batch([6, 2], 6, seed=3)
    src_mask, head_mask = lengths_mask([5, 3], 6), lengths_mask([6, 2], 6)
    with torch.no_grad():
        plain = model(src, src_mask, tgt)
        split = model(src, src_mask, tgt, head, head_mask)
        topic, rating = model.heads(head, head_mask)
    assert torch.allclose(split.logits, plain.logits, atol=ATOL)
    assert torch.allclose(split.topic_logits, topic, atol=ATOL)
    assert torch.allclose(split.rating, rating, atol=ATOL)
    assert not torch.allclose(split.topic_logits, plain.topic_logits, atol=1e-3)


def test_conversation_bag_feeds_the_heads_only() -> None:
    """With conversation_bag the heads also read the whole conversation (mean embedding and
    log length): other words or the same words over a longer conversation change the heads,
    never the generation; a model that reads it refuses a call without it."""
    torch.manual_seed(0)
    model = Seq2Seq(VOCAB, PAD, 16, 24, num_topics=3, rating_head=True, conversation_bag=True)
    model.eval()
    src, tgt = make_batch([5, 3], 6, seed=1), make_batch([4, 4], 4, seed=2)
    mask = lengths_mask([5, 3], 6)
    words = torch.tensor([7, 8, 9, 10, 11, 12])
    bags = {
        "base": ConversationBag(words, torch.tensor([0, 3])),
        "other words": ConversationBag(torch.tensor([7, 8, 9, 20, 21, 22]), torch.tensor([0, 3])),
        "longer": ConversationBag(torch.cat([words, words[3:]]), torch.tensor([0, 3])),
    }
    with torch.no_grad():
        out = {k: model(src, mask, tgt, conv=bag) for k, bag in bags.items()}
    base = out["base"]
    for k in ("other words", "longer"):
        assert torch.equal(out[k].logits, base.logits)
        assert torch.equal(out[k].topic_logits[0], base.topic_logits[0])  # row 0 unchanged
        assert not torch.allclose(out[k].topic_logits[1], base.topic_logits[1], atol=1e-6)
        assert not torch.allclose(out[k].rating[1], base.rating[1], atol=1e-7)
    with pytest.raises(ValueError, match="conversation_bag"):
        model(src, mask, tgt)
