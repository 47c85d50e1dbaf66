"""`kd_loss` under every divergence against numpy float64 computed from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillab.losses import kd_loss, kd_loss_from_probs
from distillab.losses.divergences import DIVERGENCES


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * (np.log(a) - np.log(b))).sum(-1)


def reference(student, teacher, t, mask, divergence, beta) -> float:
    """Straight from the definitions, float64 numpy, rows loop-free."""
    p = np_softmax(teacher.numpy().reshape(-1, teacher.shape[-1]) / t)
    q = np_softmax(student.detach().numpy().reshape(-1, student.shape[-1]) / t)
    if divergence == "forward_kl":
        d = np_kl(p, q)
    elif divergence == "reverse_kl":
        d = np_kl(q, p)
    elif divergence == "tvd":
        d = 0.5 * np.abs(p - q).sum(-1)
    else:
        m = beta * p + (1 - beta) * q
        d = (beta * np_kl(p, m) + (1 - beta) * np_kl(q, m)) / (beta * (1 - beta))
    keep = np.ones(d.shape, bool) if mask is None else mask.numpy().reshape(-1)
    return float(d[keep].mean() * t * t) if keep.any() else 0.0


def logits(shape, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


CASES = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("tvd", 0.5)] + [
    ("jsd", b) for b in (0.1, 0.5, 0.9)
]


@pytest.mark.parametrize("divergence,beta", CASES)
@pytest.mark.parametrize("t", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_numpy_reference(divergence, beta, t, masked):
    s, te = logits((3, 4, 9), 1), logits((3, 4, 9), 2)
    mask = (torch.arange(12).reshape(3, 4) % 3 != 0) if masked else None
    if masked:  # garbage in padding must not matter
        s = s.masked_fill(~mask.unsqueeze(-1), 1e4)
    got = kd_loss(s, te, t, mask, divergence=divergence, beta=beta)
    want = reference(s, te, t, mask, divergence, beta)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("divergence,beta", CASES)
def test_gradient_reaches_the_student_only_and_padding_gets_none(divergence, beta):
    s = logits((2, 3, 7), 3).requires_grad_()
    te = logits((2, 3, 7), 4).requires_grad_()
    mask = torch.tensor([[True, True, False], [True, False, False]])
    kd_loss(s, te, 2.0, mask, divergence=divergence, beta=beta).backward()
    assert te.grad is None
    assert torch.isfinite(s.grad).all()
    assert s.grad[~mask].abs().max() == 0 and s.grad[mask].abs().max() > 0


def test_probs_entry_point_agrees():
    s, te = logits((5, 8), 5), logits((5, 8), 6)
    for name in DIVERGENCES:
        a = kd_loss(s, te, 2.0, divergence=name, beta=0.3)
        b = kd_loss_from_probs(s, torch.softmax(te / 2.0, -1), 2.0, divergence=name, beta=0.3)
        assert a.item() == pytest.approx(b.item(), rel=1e-9)


def test_jsd_endpoints_are_the_two_kls_and_continuous():
    s, te = logits((6, 10), 7), logits((6, 10), 8)
    fwd = kd_loss(s, te, 1.0, divergence="forward_kl").item()
    rev = kd_loss(s, te, 1.0, divergence="reverse_kl").item()
    assert fwd != pytest.approx(rev, rel=0.05)
    assert kd_loss(s, te, 1.0, divergence="jsd", beta=0.0).item() == pytest.approx(fwd)
    assert kd_loss(s, te, 1.0, divergence="jsd", beta=1.0).item() == pytest.approx(rev)
    errors = []
    for eps in (1e-2, 1e-5, 1e-8):  # slow (beta log beta-like) but steady convergence
        near0 = kd_loss(s, te, 1.0, divergence="jsd", beta=eps).item()
        near1 = kd_loss(s, te, 1.0, divergence="jsd", beta=1 - eps).item()
        errors.append((abs(near0 - fwd) / fwd, abs(near1 - rev) / rev))
    assert errors[0] > errors[1] > errors[2]  # elementwise tuple order: both shrink
    assert max(errors[-1]) < 1e-3


def test_fully_masked_is_zero_and_identical_is_zero():
    s = logits((2, 6), 9)
    mask = torch.zeros(2, dtype=torch.bool)
    for name in DIVERGENCES:
        assert kd_loss(s, logits((2, 6), 10), 1.0, mask, divergence=name).item() == 0.0
        assert kd_loss(s, s, 1.5, divergence=name).item() == pytest.approx(0.0, abs=1e-12)


def test_float32_reverse_kl_stays_finite_when_teacher_underflows():
    s = torch.zeros(1, 5, requires_grad=True)
    te = torch.tensor([[200.0, 0.0, 0.0, 0.0, 0.0]])  # p underflows to 0 off the argmax
    loss = kd_loss(s, te, 0.5, divergence="reverse_kl")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_bad_names_and_betas_are_refused():
    s = logits((2, 4), 1)
    with pytest.raises(ValueError, match="divergence"):
        kd_loss(s, s, 1.0, divergence="hellinger")
    with pytest.raises(ValueError, match="beta"):
        kd_loss(s, s, 1.0, divergence="jsd", beta=1.5)


def test_teacher_outputs_thread_the_divergence():
    from distillab.losses.kd import average_teacher_probs
    from distillab.teachers.outputs import CachedOutput, LogitsOutput

    s, t1, t2 = logits((2, 3, 7), 11), logits((2, 3, 7), 12), logits((2, 3, 7), 13)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    mixed = LogitsOutput(logits=[t1, t2], weights=[0.25, 0.75])
    got = mixed.kd_loss(s, 2.0, mask, None, "jsd", 0.3)
    probs = average_teacher_probs([t1, t2], [0.25, 0.75], 2.0)
    want = kd_loss_from_probs(s, probs, 2.0, mask, "jsd", 0.3)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert got.item() != pytest.approx(mixed.kd_loss(s, 2.0, mask).item(), rel=1e-3)
    cached = CachedOutput(values=torch.zeros(2, 3, 2), ids=torch.zeros(2, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no estimator from cached top-k"):
        cached.kd_loss(s, 1.0, mask, None, "reverse_kl")
