"""Tests for logit-level KD losses, checked against independent reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, kl_divergence

from distillab.losses import average_teacher_probs, kd_loss, kd_loss_from_probs, topk_kd_loss

TEMPERATURES = [0.5, 1.0, 2.0, 4.0]
SHAPES = [(3, 5, 11), (13, 11)]


def _np_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max()
    e = np.exp(z)
    return e / e.sum()


def ref_kl_per_position(student: torch.Tensor, teacher: torch.Tensor, t: float) -> np.ndarray:
    """Unscaled KL(softmax(teacher/T) || softmax(student/T)) per position, plain numpy loops."""
    s = student.detach().numpy().reshape(-1, student.shape[-1])
    tt = teacher.detach().numpy().reshape(-1, teacher.shape[-1])
    out = np.zeros(s.shape[0])
    for i in range(s.shape[0]):
        p = _np_softmax(tt[i] / t)
        q = _np_softmax(s[i] / t)
        out[i] = sum(p[v] * (math.log(p[v]) - math.log(q[v])) for v in range(p.shape[0]))
    return out


def ref_kd_loss(student, teacher, t, mask=None) -> float:
    kl = ref_kl_per_position(student, teacher, t)
    keep = np.ones_like(kl, dtype=bool) if mask is None else mask.numpy().reshape(-1)
    if keep.sum() == 0:
        return 0.0
    return float(kl[keep].mean() * t * t)


def _logits(shape, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def _random_mask(lead_shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*lead_shape, generator=g) < 0.6


# ---------------------------------------------------------------- golden values


@pytest.mark.parametrize("t", TEMPERATURES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask_kind", ["none", "random", "row_false"])
def test_kd_loss_matches_reference(shape, t, mask_kind):
    s, te = _logits(shape, 1), _logits(shape, 2)
    lead = shape[:-1]
    if mask_kind == "none":
        mask = None
    else:
        mask = _random_mask(lead, 3)
        mask.view(-1)[0] = True  # at least one counted position
        if mask_kind == "row_false":
            mask[1] = False  # a whole sequence (or a whole position for [N, V]) masked
    got = kd_loss(s, te, t, mask)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.item(), ref_kd_loss(s, te, t, mask), rtol=1e-5)


def test_kd_loss_matches_torch_distributions():
    s, te = _logits((4, 6, 9), 10), _logits((4, 6, 9), 11)
    t = 2.0
    ref = kl_divergence(Categorical(logits=te / t), Categorical(logits=s / t)).mean() * t * t
    torch.testing.assert_close(kd_loss(s, te, t), ref, rtol=1e-5, atol=0)


def test_kd_loss_golden_literal():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 7, generator=g, dtype=torch.float64)
    te = torch.randn(2, 3, 7, generator=g, dtype=torch.float64)
    # Literal produced once by ref_kd_loss(s, te, 2.0) (numpy loops above) on these logits:
    # student drawn first, then teacher, from torch.Generator().manual_seed(0), float64.
    expected = 0.8255092736761794
    assert ref_kd_loss(s, te, 2.0) == pytest.approx(expected, rel=1e-12)
    assert kd_loss(s, te, 2.0).item() == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- basic properties


def test_zero_when_equal_positive_otherwise():
    s = _logits((2, 4, 8), 5)
    for t in TEMPERATURES:
        assert kd_loss(s, s.clone(), t).item() == pytest.approx(0.0, abs=1e-12)
        assert kd_loss(s, _logits((2, 4, 8), 6), t).item() > 1e-3


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as exc:
        kd_loss(torch.zeros(2, 3, 5), torch.zeros(2, 3, 6), 1.0)
    assert "(2, 3, 5)" in str(exc.value) and "(2, 3, 6)" in str(exc.value)
    with pytest.raises(ValueError, match="mask"):
        kd_loss(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), 1.0, torch.ones(2, 4, dtype=torch.bool))


def test_fully_masked_is_zero_with_graph():
    s = _logits((2, 3, 5), 0).requires_grad_()
    te = _logits((2, 3, 5), 1)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    loss = kd_loss(s, te, 2.0, mask)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_masked_garbage_logits_do_not_leak():
    s, te = _logits((2, 3, 5), 0), _logits((2, 3, 5), 1)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    ref = kd_loss(s, te, 2.0, mask)
    s2, te2 = s.clone(), te.clone()
    s2[~mask] = float("nan")
    te2[~mask] = float("-inf")
    s2.requires_grad_()
    loss = kd_loss(s2, te2, 2.0, mask)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert torch.isfinite(s2.grad).all()


def test_low_precision_inputs_computed_in_float32():
    s, te = _logits((2, 3, 50), 0).half(), _logits((2, 3, 50), 1).bfloat16()
    loss = kd_loss(s, te, 2.0)
    assert loss.dtype == torch.float32
    ref = kd_loss(s.double(), te.double(), 2.0).item()
    assert loss.item() == pytest.approx(ref, rel=1e-4)


# ---------------------------------------------------------------- gradients


def test_gradient_reaches_student_only_and_not_masked_positions():
    s = _logits((2, 4, 6), 0).requires_grad_()
    te = _logits((2, 4, 6), 1).requires_grad_()
    mask = torch.tensor([[True, False, True, True], [False, False, True, False]])
    kd_loss(s, te, 2.0, mask).backward()
    assert te.grad is None
    assert s.grad is not None
    assert (s.grad[mask].abs().sum(-1) > 0).all()
    assert torch.equal(s.grad[~mask], torch.zeros_like(s.grad[~mask]))


def test_teacher_detached_in_probs_and_topk_variants():
    s = _logits((2, 3, 6), 0).requires_grad_()
    te = _logits((2, 3, 6), 1).requires_grad_()
    probs = F.softmax(te / 2.0, -1)
    kd_loss_from_probs(s, probs, 2.0).backward()
    vals = te.detach().clone().requires_grad_()
    ids = torch.arange(6).expand(2, 3, 6)
    topk_kd_loss(s, vals, ids, 2.0).backward()
    assert te.grad is None and vals.grad is None
    assert s.grad.abs().sum() > 0


def test_t_squared_scaling():
    s0, te = _logits((3, 4, 10), 0, scale=1.0), _logits((3, 4, 10), 1, scale=1.0)
    norms, unscaled_norms = [], []
    for t in [1.0, 2.0, 4.0, 8.0]:
        # loss == T^2 * unscaled KL, exactly against the independent reference
        unscaled = ref_kl_per_position(s0, te, t).mean()
        assert kd_loss(s0, te, t).item() == pytest.approx(t * t * unscaled, rel=1e-9)

        s = s0.clone().requires_grad_()
        loss = kd_loss(s, te, t)
        (g,) = torch.autograd.grad(loss, s)
        norms.append(g.norm().item())
        unscaled_norms.append((g / (t * t)).norm().item())
    # with T^2 the gradient magnitude stays of the same order across temperatures ...
    assert max(norms) / min(norms) < 2.0
    # ... whereas without it the gradient would shrink roughly like 1/T^2
    assert unscaled_norms[0] / unscaled_norms[-1] > 20.0


# ---------------------------------------------------------------- multi-teacher


def test_average_single_teacher_is_softmax():
    lg = _logits((2, 3, 7), 0)
    for t in TEMPERATURES:
        torch.testing.assert_close(average_teacher_probs([lg], None, t), F.softmax(lg / t, -1))
        torch.testing.assert_close(average_teacher_probs([lg], [3.0], t), F.softmax(lg / t, -1))


def test_average_weights_normalised():
    a, b = _logits((2, 3, 7), 0), _logits((2, 3, 7), 1)
    t = 2.0
    torch.testing.assert_close(average_teacher_probs([a, b], [1.0, 0.0], t), F.softmax(a / t, -1))
    expected = 0.25 * F.softmax(a / t, -1) + 0.75 * F.softmax(b / t, -1)
    got = average_teacher_probs([a, b], [2.0, 6.0], t)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    uniform = average_teacher_probs([a, b], None, t)
    torch.testing.assert_close(uniform, 0.5 * F.softmax(a / t, -1) + 0.5 * F.softmax(b / t, -1))


@pytest.mark.parametrize(
    "weights", [[1.0, -0.5], [1.0], [1.0, 1.0, 1.0], [0.0, 0.0], [1.0, float("nan")]]
)
def test_average_bad_weights_raise(weights):
    a, b = _logits((2, 7), 0), _logits((2, 7), 1)
    with pytest.raises(ValueError):
        average_teacher_probs([a, b], weights, 1.0)


def test_average_teacher_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        average_teacher_probs([torch.zeros(2, 7), torch.zeros(2, 8)], None, 1.0)
    with pytest.raises(ValueError):
        average_teacher_probs([], None, 1.0)


def test_kd_from_probs_single_teacher_equals_kd_loss():
    s, te = _logits((2, 5, 9), 0), _logits((2, 5, 9), 1)
    mask = _random_mask((2, 5), 2)
    for t in TEMPERATURES:
        probs = average_teacher_probs([te], None, t)
        torch.testing.assert_close(
            kd_loss_from_probs(s, probs, t, mask), kd_loss(s, te, t, mask), rtol=1e-10, atol=0
        )


def test_kd_from_probs_mixture_matches_reference():
    s, a, b = _logits((6, 9), 0), _logits((6, 9), 1), _logits((6, 9), 2)
    t = 2.0
    mix = average_teacher_probs([a, b], [0.3, 0.7], t)
    q = F.log_softmax(s / t, -1)
    ref = sum(
        sum(mix[i, v].item() * (math.log(mix[i, v].item()) - q[i, v].item()) for v in range(9))
        for i in range(6)
    )
    assert kd_loss_from_probs(s, mix, t).item() == pytest.approx(ref / 6 * t * t, rel=1e-9)


def test_kd_from_probs_handles_zero_teacher_probs():
    s = _logits((3, 5), 0).requires_grad_()
    p = torch.tensor([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.2] * 5], dtype=torch.float64)
    loss = kd_loss_from_probs(s, p, 1.0)
    q = F.log_softmax(s.detach(), -1)
    ref = (-q[0, 0] + 0.5 * (math.log(0.5) * 2 - q[1, 0] - q[1, 1])).item()
    ref += sum(0.2 * (math.log(0.2) - q[2, v].item()) for v in range(5))
    assert loss.item() == pytest.approx(ref / 3, rel=1e-10)
    loss.backward()
    assert torch.isfinite(s.grad).all()
