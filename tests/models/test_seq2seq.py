"""Tests for the distillab.models package (small CPU models, fast)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor, nn

from distillab.models import Attention, GRUEncoder, Seq2Seq, Seq2SeqOutput

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
    att = Attention(10, 6, kind)
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
    att = Attention(4, 4)
    mask = torch.zeros(1, 5, dtype=torch.bool)
    _, w = att(torch.randn(1, 2, 4), att.precompute(torch.randn(1, 5, 4), mask))
    torch.testing.assert_close(w, torch.full((1, 2, 5), 0.2))


def test_invalid_attention_kind_raises() -> None:
    with pytest.raises(ValueError, match="additive"):
        Attention(4, 4, "dot")
    with pytest.raises(ValueError, match="multiplicative"):
        Seq2Seq(vocab_size=10, pad_id=0, emb_dim=4, hidden_size=8, attention="bogus")


# ----------------------------------------------------------------------------- generation helpers
def setup_generation(attention: str, seed: int) -> tuple[Seq2Seq, Tensor, Tensor]:
    model = make_model(attention, seed=seed)
    with torch.no_grad():  # make EOS competitive so rows finish at different steps
        model.out_bias[EOS] += 0.35
    src_len = [6, 2, 4, 5]
    src = make_batch(src_len, 6, seed=seed + 10)
    return model, src, lengths_mask(src_len, 6)


def reference_greedy(model: Seq2Seq, src: Tensor, mask: Tensor, max_len: int) -> list[list[int]]:
    """Independent greedy: re-run the full teacher-forced forward on the growing prefix."""
    seqs = []
    for i in range(src.size(0)):
        seq: list[int] = []
        while len(seq) < max_len:
            tgt_in = torch.tensor([[BOS] + seq])
            logits = model(src[i : i + 1], mask[i : i + 1], tgt_in).logits[0, -1].clone()
            logits[[PAD, BOS]] = float("-inf")
            seq.append(int(logits.argmax()))
            if seq[-1] == EOS:
                break
        seqs.append(seq)
    return seqs


def strip(row: Tensor) -> list[int]:
    """Generated row -> tokens up to and including EOS (drops trailing pads)."""
    out = []
    for t in row.tolist():
        if t == PAD:
            break
        out.append(t)
        if t == EOS:
            break
    return out


def seq_logprob(model: Seq2Seq, src: Tensor, mask: Tensor, seq: list[int]) -> float:
    """Model log-prob of ``seq`` (given one source row) computed with ``forward``."""
    if not seq:
        return 0.0
    tgt_in = torch.tensor([[BOS] + seq[:-1]])
    logp = torch.log_softmax(model(src, mask, tgt_in).logits[0], dim=-1)
    return float(logp[torch.arange(len(seq)), torch.tensor(seq)].sum())


def check_format(out: Tensor, max_len: int) -> None:
    assert out.dtype == torch.long and out.size(1) <= max_len
    assert not torch.any(out == BOS)
    for row in out.tolist():
        if EOS in row:
            cut = row.index(EOS) + 1
            assert all(t == PAD for t in row[cut:])
            assert PAD not in row[:cut]
        else:
            assert PAD not in row


# ----------------------------------------------------------------------------- greedy / beam
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_decoder_step_equals_forward_for_one_token(attention: str) -> None:
    """The generation step (GRU cells called directly) is the teacher-forced decoder at T=1."""
    model, src, mask = setup_generation(attention, seed=3)
    dec = model.decoder
    assert dec.num_layers == 2
    with torch.no_grad():
        enc, hidden = model.encode(src, mask)
        memory = dec.precompute(enc, mask)
        y = torch.randn(src.size(0), 16)
        for _ in range(3):  # chained steps: the returned hidden state feeds the next one
            want, want_hidden, _, _ = dec(y.unsqueeze(1), hidden, memory)
            got, hidden = dec.step(y, hidden, memory)
            torch.testing.assert_close(got, want[:, 0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(hidden, want_hidden, rtol=1e-5, atol=1e-6)
            y = got[:, :16]


@pytest.mark.parametrize(("attention", "seed"), [("additive", 5), ("multiplicative", 4)])
def test_greedy_matches_stepwise_forward_argmax(attention: str, seed: int) -> None:
    model, src, mask = setup_generation(attention, seed=seed)
    max_len = 8
    out = model.generate(src, mask, BOS, EOS, max_len)
    check_format(out, max_len)
    ref = reference_greedy(model, src, mask, max_len)
    assert [strip(r) for r in out] == ref
    assert out.size(1) == max(len(s) for s in ref)
    # the seeds are chosen so some rows stop at EOS early and others run to max_len
    assert any(s[-1] == EOS for s in ref) and any(s[-1] != EOS for s in ref)


def test_beam_size_one_equals_greedy() -> None:
    model, src, mask = setup_generation("multiplicative", seed=4)
    greedy = model.generate(src, mask, BOS, EOS, 9)
    with torch.no_grad():
        enc, h0 = model.encode(src, mask)
        memory = model.decoder.precompute(enc, mask)
        beam1, _ = model._beam(memory, h0, BOS, EOS, 9, 1, 1.0, model.banned_bias(BOS))
    assert torch.equal(beam1, greedy)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_scores_match_forward_logprob(length_penalty: float) -> None:
    """Beam bookkeeping (hidden-state reordering, token history) must agree with ``forward``."""
    model, src, mask = setup_generation("additive", seed=7)
    with torch.no_grad():
        model.embedding.weight.mul_(4.0)  # sharper, history-dependent distributions
        enc, h0 = model.encode(src, mask)
        memory = model.decoder.precompute(enc, mask)
        toks, scores = model._beam(
            memory, h0, BOS, EOS, 7, 5, length_penalty, model.banned_bias(BOS)
        )
        assert toks.size(1) > 2
        for i in range(src.size(0)):
            lp = seq_logprob(model, src[i : i + 1], mask[i : i + 1], strip(toks[i]))
            assert lp == pytest.approx(float(scores[i]), abs=1e-4)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_beam_logprob_not_worse_than_greedy(seed: int) -> None:
    model, src, mask = setup_generation("additive", seed=seed)
    greedy = model.generate(src, mask, BOS, EOS, 7)
    beam = model.generate(src, mask, BOS, EOS, 7, beam_size=4, length_penalty=0.0)
    check_format(beam, 7)
    with torch.no_grad():
        for i in range(src.size(0)):
            s, m = src[i : i + 1], mask[i : i + 1]
            lp_beam = seq_logprob(model, s, m, strip(beam[i]))
            lp_greedy = seq_logprob(model, s, m, strip(greedy[i]))
            assert lp_beam >= lp_greedy - 1e-4


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_is_exhaustive_search(length_penalty: float) -> None:
    """With a beam wider than the hypothesis space, beam search must find the true optimum."""
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=6, pad_id=PAD, emb_dim=8, hidden_size=12, attention="additive")
    model.eval()
    with torch.no_grad():
        model.out_bias[EOS] += 1.0
    src = torch.tensor([[3, 4, 5, 3], [5, 5, 0, 0]])
    mask = src != PAD
    max_len = 3
    beam = model.generate(src, mask, BOS, EOS, max_len, beam_size=40, length_penalty=length_penalty)
    words = [3, 4, 5]
    hyps = [list(p) + [EOS] for n in range(max_len) for p in itertools.product(words, repeat=n)]
    hyps += [list(p) for p in itertools.product(words, repeat=max_len)]
    with torch.no_grad():
        for i in range(2):
            s, m = src[i : i + 1], mask[i : i + 1]
            scored = [seq_logprob(model, s, m, h) / len(h) ** length_penalty for h in hyps]
            best = hyps[max(range(len(hyps)), key=scored.__getitem__)]
            assert strip(beam[i]) == best


@pytest.mark.parametrize("beam_size", [1, 3])
def test_generate_ignores_src_padding(beam_size: int) -> None:
    model, src, mask = setup_generation("multiplicative", seed=8)
    lengths = mask.sum(1).tolist()
    src2 = repad(src, lengths, 5, junk=True)
    mask2 = lengths_mask(lengths, src2.size(1))
    a = model.generate(src, mask, BOS, EOS, 8, beam_size=beam_size)
    b = model.generate(src2, mask2, BOS, EOS, 8, beam_size=beam_size)
    assert torch.equal(a, b)


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
    _, h0 = model.encode(src, src != PAD)
    assert h0.shape == (3, 2, 24)
