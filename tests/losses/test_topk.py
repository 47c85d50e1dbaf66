"""The top-k + tail-draw KD loss of the teacher-output cache, checked against the full
`kd_loss` and its documented formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distillab.losses import kd_loss, topk_kd_loss
from tests.losses.test_kd import SHAPES, TEMPERATURES, _logits, _random_mask

# ---------------------------------------------------------------- top-k cache


def _topk(teacher, k, tc=1.0):
    """What the cache stores: the teacher's top-k log-probabilities at T_c, and their ids."""
    vals, ids = F.log_softmax(teacher / tc, -1).topk(k, dim=-1)
    return vals, ids


@pytest.mark.parametrize("t", TEMPERATURES)
@pytest.mark.parametrize("shape", SHAPES)
def test_topk_full_vocab_equals_kd_loss(shape, t):
    s, te = _logits(shape, 0), _logits(shape, 1)
    mask = _random_mask(shape[:-1], 2)
    vals, ids = _topk(te, shape[-1])
    for m in (None, mask):
        torch.testing.assert_close(
            topk_kd_loss(s, vals, ids, t, m), kd_loss(s, te, t, m), rtol=1e-6, atol=1e-9
        )
    # order of the stored ids must not matter
    perm = torch.randperm(shape[-1], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        topk_kd_loss(s, vals[..., perm], ids[..., perm], t), kd_loss(s, te, t), rtol=1e-6, atol=0
    )


def _with_tail_draws(teacher, k, n, seed=0, tc=1.0):
    """What the cache stores with tail draws: top-k, then `n` draws from the rest, sorted, all
    from the teacher softened at T_c."""
    vals, ids = _topk(teacher, k, tc)
    log_p = F.log_softmax(teacher / tc, -1)
    tail = log_p.exp().scatter(-1, ids, 0.0).reshape(-1, teacher.shape[-1])
    gen = torch.Generator().manual_seed(seed)
    drawn = torch.multinomial(tail, n, replacement=True, generator=gen).sort(-1).values
    drawn = drawn.view(*ids.shape[:-1], n)
    return torch.cat([vals, log_p.gather(-1, drawn)], -1), torch.cat([ids, drawn], -1)


@pytest.mark.parametrize(("t", "tc"), [(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0)])
def test_topk_partial_matches_documented_formula(t, tc):
    """Plain numpy over distinct tokens, values softened at T_c, r = T_c / T: top-k p^r; each
    draw (P/S) p^(r - 1)."""
    s, te = _logits((4, 12), 0), _logits((4, 12), 1)
    k, n, r = 3, 6, tc / t
    for draws in (0, n):
        vals, ids = _with_tail_draws(te, k, n, tc=tc) if draws else _topk(te, k, tc)
        ref = 0.0
        for i in range(4):
            lp, tok = vals[i].numpy().astype(np.float64), ids[i].numpy()
            p_top = np.exp(lp[:k])
            w = {int(j): pj**r for j, pj in zip(tok[:k], p_top, strict=True)}
            for j, lpj in zip(tok[k:], lp[k:], strict=True):  # repeated draws add up
                w[int(j)] = w.get(int(j), 0.0) + (1 - p_top.sum()) / n * np.exp(lpj) ** (r - 1)
            z = sum(w.values())
            q = np.exp(F.log_softmax(s[i].double() / t, -1).numpy())
            ref += sum(wj / z * (np.log(wj / z) - np.log(q[j])) for j, wj in w.items())
        got = topk_kd_loss(s, vals, ids, t, tail_samples=draws, softening_temperature=tc).item()
        assert got == pytest.approx(ref / 4 * t * t, rel=1e-9)
        assert got > 0
    assert len(set(ids[..., k:].flatten().tolist())) < ids[..., k:].numel()  # repeats covered


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_tail_draws_at_the_softening_temperature_make_the_gradient_unbiased(t):
    """Cached at the job's temperature, the mean gradient over independent caches approaches
    the full-teacher gradient on every token, the tail included; a top-k alone stays biased
    on the tail."""
    s = _logits((6, 30), 0).requires_grad_()
    te = _logits((6, 30), 1)
    kd_loss(s, te, t).backward()
    full, s.grad = s.grad.clone(), None
    topk_kd_loss(s, *_topk(te, 4, t), t, softening_temperature=t).backward()
    topk_only, s.grad = s.grad.clone(), None
    # 400 independent caches in one batch (each row draws its own tail): the loss averages
    # over rows, so the gradient reaching `s` is the mean over the caches
    n = 400
    cache = _with_tail_draws(te.repeat(n, 1), 4, 8, tc=t)
    topk_kd_loss(s.repeat(n, 1), *cache, t, tail_samples=8, softening_temperature=t).backward()
    mean = s.grad
    err_draws = (mean - full).abs().max().item()
    err_topk = (topk_only - full).abs().max().item()
    assert err_draws < 0.1 * err_topk, (err_draws, err_topk)


def test_tail_draws_away_from_the_softening_temperature_approach_kd_loss():
    """At T != T_c (a temperature schedule) the draws' importance weights estimate the
    re-softened tail: with many draws the loss approaches the full KD loss."""
    s, te = _logits((5, 40), 0), _logits((5, 40), 1)
    t, n = 2.0, 4000
    vals, ids = _with_tail_draws(te, 4, n)
    got = topk_kd_loss(s, vals, ids, t, tail_samples=n).item()
    assert got == pytest.approx(kd_loss(s, te, t).item(), rel=0.02)
    assert topk_kd_loss(s, *_topk(te, 4), t).item() != pytest.approx(got, rel=0.1)


def test_topk_at_t1_gives_full_teacher_gradient_on_stored_tokens():
    s = _logits((3, 20), 0).requires_grad_()
    te = _logits((3, 20), 1)
    vals, ids = _with_tail_draws(te, 5, 8)
    topk_kd_loss(s, vals, ids, 1.0, tail_samples=8).backward()
    top = ids[..., :5]
    g_top = s.grad.gather(-1, top).clone()
    s.grad = None
    kd_loss(s, te, 1.0).backward()
    # on the top tokens the gradient is q - p for both (p: the teacher's true probability),
    # whatever the draws
    torch.testing.assert_close(g_top, s.grad.gather(-1, top), rtol=1e-6, atol=1e-9)


def test_topk_fp16_int32_masking_and_grad():
    s = _logits((2, 5, 40), 0).float().requires_grad_()
    te = _logits((2, 5, 40), 1).float()
    vals, ids = _topk(te, 8)
    vals, ids = vals.half(), ids.to(torch.int32)
    mask = torch.tensor([[True, True, False, True, False], [False, False, False, True, True]])
    loss = topk_kd_loss(s, vals, ids, 2.0, mask)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.equal(s.grad[~mask], torch.zeros_like(s.grad[~mask]))
    assert (s.grad[mask].abs().sum(-1) > 0).all()
    # changing the cached teacher at masked positions does not change the loss
    vals2 = vals.clone()
    vals2[~mask] = 0.0
    ids2 = ids.clone()
    ids2[~mask] = 0
    torch.testing.assert_close(topk_kd_loss(s, vals2, ids2, 2.0, mask), loss)
    # fully masked -> 0, no NaN
    zero = topk_kd_loss(s, vals, ids, 2.0, torch.zeros(2, 5, dtype=torch.bool))
    assert zero.item() == 0.0


def test_topk_shape_errors():
    s = torch.zeros(2, 10)
    with pytest.raises(ValueError):
        topk_kd_loss(s, torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.long), 1.0)
    with pytest.raises(ValueError):
        topk_kd_loss(s, torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.long), 1.0)
    with pytest.raises(ValueError):
        topk_kd_loss(s, torch.zeros(2, 11), torch.zeros(2, 11, dtype=torch.long), 1.0)
    with pytest.raises(ValueError):
        topk_kd_loss(s, torch.zeros(2, 3), torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match="tail_samples=4"):
        topk_kd_loss(s, torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 1.0, None, None, 4)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_topk_reuses_given_student_log_probs_at_the_distillation_temperature(t):
    s = _logits((2, 3, 9), 0).requires_grad_()
    te = _logits((2, 3, 9), 1)
    v, i = te.topk(4, dim=-1)
    mask = torch.tensor([[True, True, False], [True, False, True]])
    ref = topk_kd_loss(s, v, i, t, mask, softening_temperature=t)
    (ref_grad,) = torch.autograd.grad(ref, s)
    gathered = torch.log_softmax(s / t, -1).gather(-1, i)
    shared = topk_kd_loss(s, v, i, t, mask, gathered, softening_temperature=t)
    torch.testing.assert_close(shared, ref)
    torch.testing.assert_close(torch.autograd.grad(shared, s)[0], ref_grad)
    # what is given is what is read (no second softmax of the logits)
    other = topk_kd_loss(s, v, i, t, mask, torch.zeros_like(gathered), softening_temperature=t)
    assert not torch.allclose(other, ref)
