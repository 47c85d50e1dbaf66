"""Decoding strategies against the Seq2Seq model (small CPU models, fast)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor

from distillab.decoding import Beam, Greedy, Sample, build_strategy
from distillab.decoding.sample import nucleus
from distillab.errors import ConfigError
from distillab.models import Seq2Seq
from tests.models.test_seq2seq import (
    BOS,
    EOS,
    PAD,
    VOCAB,
    lengths_mask,
    make_batch,
    make_model,
    repad,
)

IDS = dict(bos_id=BOS, eos_id=EOS)


# ----------------------------------------------------------------------------- helpers
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
@pytest.mark.parametrize(("attention", "seed"), [("additive", 5), ("multiplicative", 4)])
def test_greedy_matches_stepwise_forward_argmax(attention: str, seed: int) -> None:
    model, src, mask = setup_generation(attention, seed=seed)
    max_len = 8
    out = Greedy()(model, src, mask, **IDS, max_len=max_len)
    check_format(out, max_len)
    ref = reference_greedy(model, src, mask, max_len)
    assert [strip(r) for r in out] == ref
    assert out.size(1) == max(len(s) for s in ref)
    # the seeds are chosen so some rows stop at EOS early and others run to max_len
    assert any(s[-1] == EOS for s in ref) and any(s[-1] != EOS for s in ref)


def test_zero_max_len_gives_empty_rows() -> None:
    model, src, mask = setup_generation("multiplicative", seed=4)
    for strategy in (Greedy(), Beam(3), Sample(seed=0)):
        out = strategy(model, src, mask, **IDS, max_len=0)
        assert out.shape == (4, 0) and out.dtype == torch.long


def test_beam_size_one_equals_greedy() -> None:
    model, src, mask = setup_generation("multiplicative", seed=4)
    greedy = Greedy()(model, src, mask, **IDS, max_len=9)
    beam1, _ = Beam(beam_size=1).search(model, src, mask, **IDS, max_len=9)
    assert torch.equal(beam1, greedy)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_scores_match_forward_logprob(length_penalty: float) -> None:
    """Beam bookkeeping (state reordering, token history) must agree with ``forward``."""
    model, src, mask = setup_generation("additive", seed=7)
    with torch.no_grad():
        model.embedding.weight.mul_(4.0)  # sharper, history-dependent distributions
    toks, scores = Beam(5, length_penalty).search(model, src, mask, **IDS, max_len=7)
    assert toks.size(1) > 2
    with torch.no_grad():
        for i in range(src.size(0)):
            lp = seq_logprob(model, src[i : i + 1], mask[i : i + 1], strip(toks[i]))
            assert lp == pytest.approx(float(scores[i]), abs=1e-4)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_beam_logprob_not_worse_than_greedy(seed: int) -> None:
    model, src, mask = setup_generation("additive", seed=seed)
    greedy = Greedy()(model, src, mask, **IDS, max_len=7)
    beam = Beam(beam_size=4, length_penalty=0.0)(model, src, mask, **IDS, max_len=7)
    check_format(beam, 7)
    better = 0
    with torch.no_grad():
        for i in range(src.size(0)):
            s, m = src[i : i + 1], mask[i : i + 1]
            lp_beam = seq_logprob(model, s, m, strip(beam[i]))
            lp_greedy = seq_logprob(model, s, m, strip(greedy[i]))
            assert lp_beam >= lp_greedy - 1e-4
            better += lp_beam > lp_greedy + 1e-4
    if seed == 5:  # a case where the search matters: beam strictly beats greedy on some row
        assert better > 0


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
    beam = Beam(40, length_penalty)(model, src, mask, **IDS, max_len=max_len)
    words = [3, 4, 5]
    hyps = [list(p) + [EOS] for n in range(max_len) for p in itertools.product(words, repeat=n)]
    hyps += [list(p) for p in itertools.product(words, repeat=max_len)]
    with torch.no_grad():
        for i in range(2):
            s, m = src[i : i + 1], mask[i : i + 1]
            scored = [seq_logprob(model, s, m, h) / len(h) ** length_penalty for h in hyps]
            best = hyps[max(range(len(hyps)), key=scored.__getitem__)]
            assert strip(beam[i]) == best


@pytest.mark.parametrize("strategy", [Greedy(), Beam(3), Sample(temperature=0.8, seed=3)])
def test_generate_ignores_src_padding(strategy) -> None:
    model, src, mask = setup_generation("multiplicative", seed=8)
    lengths = mask.sum(1).tolist()
    src2 = repad(src, lengths, 5, junk=True)
    mask2 = lengths_mask(lengths, src2.size(1))
    a = strategy(model, src, mask, **IDS, max_len=8)
    b = strategy(model, src2, mask2, **IDS, max_len=8)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- sampling
def test_nucleus_keeps_the_smallest_set_reaching_top_p() -> None:
    probs = torch.tensor([[0.125, 0.5, 0.125, 0.25], [0.25, 0.25, 0.25, 0.25]])
    assert nucleus(probs, 1e-6).tolist() == [[0, 0.5, 0, 0], [0.25, 0, 0, 0]]
    assert nucleus(probs, 0.5).tolist() == [[0, 0.5, 0, 0], [0.25, 0.25, 0, 0]]
    assert nucleus(probs, 0.75).tolist() == [[0, 0.5, 0, 0.25], [0.25, 0.25, 0.25, 0]]
    # ties (0.125 at ids 0 and 2) keep the lower id, as argmax would
    assert nucleus(probs, 0.76).tolist() == [[0.125, 0.5, 0, 0.25], [0.25] * 4]
    assert nucleus(probs, 1.0).tolist() == probs.tolist()


@pytest.mark.parametrize(("attention", "seed"), [("additive", 5), ("multiplicative", 4)])
def test_tiny_top_p_or_temperature_is_greedy(attention: str, seed: int) -> None:
    model, src, mask = setup_generation(attention, seed=seed)
    greedy = Greedy()(model, src, mask, **IDS, max_len=8)
    for strategy in (
        Sample(top_p=1e-6, seed=0),
        Sample(temperature=3.0, top_p=1e-6, seed=1),
        Sample(temperature=1e-4, seed=2),
    ):
        assert torch.equal(strategy(model, src, mask, **IDS, max_len=8), greedy)


def test_same_seed_same_tokens_other_seed_other_tokens() -> None:
    model, src, mask = setup_generation("additive", seed=6)
    src, mask = src.repeat(4, 1), mask.repeat(4, 1)  # 16 rows
    a = Sample(seed=11)(model, src, mask, **IDS, max_len=10)
    b = Sample(seed=11)(model, src, mask, **IDS, max_len=10)
    c = Sample(seed=12)(model, src, mask, **IDS, max_len=10)
    check_format(a, 10)
    assert torch.equal(a, b)
    assert a.shape != c.shape or not torch.equal(a, c)
    # the rows are four copies of the same four sources: sampling draws them independently
    assert len({tuple(r) for r in a.tolist()}) > 4
    # without a seed, draws follow torch's global generator
    torch.manual_seed(5)
    d = Sample()(model, src, mask, **IDS, max_len=10)
    torch.manual_seed(5)
    assert torch.equal(Sample()(model, src, mask, **IDS, max_len=10), d)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.5, 1.0), (2.0, 0.6)])
def test_first_token_frequencies_follow_the_model(temperature: float, top_p: float) -> None:
    """Draws of one step over many copies of a source match softmax(logits / T) restricted to
    the top-p nucleus and renormalised (pad and BOS excluded)."""
    model, src, mask = setup_generation("multiplicative", seed=4)
    n = 20000
    src, mask = src[:1].expand(n, -1), mask[:1].expand(n, -1)
    with torch.no_grad():
        logits, _ = model.step(torch.tensor([BOS]), model.encode(src[:1], mask[:1]))
    logits[0, [PAD, BOS]] = float("-inf")
    want = nucleus(torch.softmax(logits / temperature, dim=-1), top_p)[0]
    want = want / want.sum()
    tokens = Sample(temperature, top_p, seed=0)(model, src, mask, **IDS, max_len=1)[:, 0]
    freq = torch.bincount(tokens, minlength=VOCAB).float() / n
    assert freq[PAD] == 0 and freq[BOS] == 0
    assert torch.all(freq[want == 0] == 0)
    torch.testing.assert_close(freq, want, rtol=0, atol=0.015)
    assert int((want > 0).sum()) > 2  # a real distribution, not a point mass


def test_pad_and_bos_are_never_produced_even_when_most_likely() -> None:
    model, src, mask = setup_generation("additive", seed=5)
    with torch.no_grad():
        model.out_bias[PAD] += 30.0
        model.out_bias[BOS] += 30.0
        logits = model(src, mask, torch.full((4, 1), BOS)).logits[:, 0]
    assert set(logits.argmax(-1).tolist()) <= {PAD, BOS}  # unbanned, they would win
    for strategy in (Greedy(), Beam(4), Sample(seed=0), Sample(temperature=50.0, seed=1)):
        out = strategy(model, src.repeat(8, 1), mask.repeat(8, 1), **IDS, max_len=12)
        check_format(out, 12)


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Sample(top_p=1.5), r"decoding\.top_p=1\.5 is out of range; allowed: \(0, 1\]"),
        (lambda: Sample(top_p=0.0), r"decoding\.top_p=0\.0 is out of range; allowed: \(0, 1\]"),
        (lambda: Sample(temperature=0), r"decoding\.temperature=0 is out of range"),
        (lambda: Sample(temperature=-1.0), r"decoding\.temperature=-1\.0 is out of range"),
        (lambda: Sample(temperature="hot"), r"decoding\.temperature='hot' must be a number"),
        (lambda: Sample(seed=1.5), r"decoding\.seed=1\.5 must be an integer"),
        (lambda: Beam(beam_size=0), r"decoding\.beam_size=0 is out of range; allowed: \[1, inf\]"),
        (lambda: Beam(beam_size=2.5), r"decoding\.beam_size=2\.5 must be an integer"),
        (lambda: Beam(length_penalty="x"), r"decoding\.length_penalty='x' must be a number"),
    ],
)
def test_invalid_arguments_raise_config_error_naming_the_key(make, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_build_strategy_from_config_dict() -> None:
    assert build_strategy({"_target_": "distillab.decoding.Greedy"}) == Greedy()
    beam = build_strategy({"_target_": "distillab.decoding.Beam", "beam_size": 3})
    assert beam == Beam(beam_size=3, length_penalty=1.0)
    spec = {"_target_": "distillab.decoding.Sample", "top_p": 1.5}
    with pytest.raises(ConfigError, match=r"^decoding\.top_p=1\.5 is out of range"):
        build_strategy(spec)
    with pytest.raises(ConfigError, match=r"^distill\.seqkd\.decoding\.top_p=1\.5 is out of"):
        build_strategy(spec, "distill.seqkd.decoding")
    with pytest.raises(ConfigError, match=r"distill\.seqkd\.decoding must name a decoding"):
        build_strategy({"beam_size": 4}, "distill.seqkd.decoding")
