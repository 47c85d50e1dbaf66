"""Tests for hidden-state and attention transfer losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from distillab.losses import attention_transfer_loss, hidden_state_loss


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


MASK = torch.tensor([[True, True, False, True], [True, False, False, False]])


# ---------------------------------------------------------------- hidden states


def test_hidden_state_mse_reference():
    s, t = _randn(2, 4, 6, seed=0), _randn(2, 4, 6, seed=1)
    ref = sum(
        ((s[b, i] - t[b, i]) ** 2).sum().item() for b in range(2) for i in range(4) if MASK[b, i]
    ) / (int(MASK.sum()) * 6)
    assert hidden_state_loss(s, t, MASK).item() == pytest.approx(ref, rel=1e-12)
    assert hidden_state_loss(s, s.clone(), MASK).item() == 0.0


def test_hidden_state_masked_positions_do_not_count():
    s, t = _randn(2, 4, 6, seed=0), _randn(2, 4, 6, seed=1)
    base = hidden_state_loss(s, t, MASK)
    s2, t2 = s.clone(), t.clone()
    s2[~MASK] = 1e6
    t2[~MASK] = float("nan")
    torch.testing.assert_close(hidden_state_loss(s2, t2, MASK), base)


def test_hidden_state_projection_path_and_gradients():
    torch.manual_seed(0)
    proj = nn.Linear(5, 8).double()
    s = _randn(2, 4, 5, seed=0).requires_grad_()
    t = _randn(2, 4, 8, seed=1).requires_grad_()
    loss = hidden_state_loss(s, t, MASK, projection=proj)
    ref = ((proj(s)[MASK] - t[MASK]) ** 2).mean()
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert t.grad is None
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert proj.bias.grad is not None and proj.bias.grad.abs().sum() > 0
    assert torch.equal(s.grad[~MASK], torch.zeros_like(s.grad[~MASK]))
    assert (s.grad[MASK].abs().sum(-1) > 0).all()


def test_hidden_state_size_mismatch_without_projection():
    with pytest.raises(ValueError) as exc:
        hidden_state_loss(torch.zeros(2, 4, 5), torch.zeros(2, 4, 8), MASK)
    assert "5" in str(exc.value) and "8" in str(exc.value)
    with pytest.raises(ValueError):
        hidden_state_loss(torch.zeros(2, 4, 5), torch.zeros(2, 4, 8), MASK, nn.Linear(5, 7))
    with pytest.raises(ValueError):
        hidden_state_loss(torch.zeros(2, 4, 5), torch.zeros(2, 3, 5), MASK)


def test_hidden_state_fully_masked():
    s = _randn(2, 4, 6).requires_grad_()
    loss = hidden_state_loss(s, _randn(2, 4, 6, seed=1), torch.zeros(2, 4, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


# ---------------------------------------------------------------- attention


def _attn(logits, key_mask):
    """Masked softmax over keys, like a real attention layer."""
    return logits.masked_fill(~key_mask[:, None, :], float("-inf")).softmax(-1)


QMASK = torch.tensor([[True, True, True, False], [True, True, False, False]])
KMASK = torch.tensor([[True, True, True, False, False], [True, True, True, True, False]])


def test_attention_identical_is_zero():
    a = _attn(_randn(2, 4, 5), KMASK)
    assert attention_transfer_loss(a, a.clone(), QMASK, KMASK).item() == 0.0


def test_attention_matches_reference_kl():
    s = _attn(_randn(2, 4, 5, seed=0), KMASK)
    t = _attn(_randn(2, 4, 5, seed=1), KMASK)
    total, n = 0.0, 0
    for b in range(2):
        for q in range(4):
            if not QMASK[b, q]:
                continue
            n += 1
            for k in range(5):
                if KMASK[b, k]:
                    p, r = t[b, q, k].item(), s[b, q, k].item()
                    total += p * (math.log(p) - math.log(r))
    got = attention_transfer_loss(s, t, QMASK, KMASK).item()
    assert got == pytest.approx(total / n, rel=1e-6)
    assert got > 0


def test_attention_no_nan_with_masked_keys_and_rows():
    s_logits = _randn(2, 4, 5, seed=0).requires_grad_()
    s = _attn(s_logits, KMASK)
    t = _attn(_randn(2, 4, 5, seed=1), KMASK).requires_grad_()
    # a padded query row whose keys are all masked yields NaN attention in real models
    s_nan = s.clone()
    s_nan[0, 3] = float("nan")
    loss = attention_transfer_loss(s_nan, t, QMASK, KMASK)
    assert torch.isfinite(loss)
    loss.backward()
    assert t.grad is None
    assert torch.isfinite(s_logits.grad).all()
    assert s_logits.grad.abs().sum() > 0


def test_attention_masked_positions_do_not_count():
    s = _attn(_randn(2, 4, 5, seed=0), KMASK)
    t = _attn(_randn(2, 4, 5, seed=1), KMASK)
    base = attention_transfer_loss(s, t, QMASK, KMASK)
    s2, t2 = s.clone(), t.clone()
    s2[~QMASK] = 0.7
    t2[~QMASK] = 0.1
    s2[~KMASK[:, None, :].expand_as(s2)] = float("nan")  # garbage on masked keys
    t2[~KMASK[:, None, :].expand_as(t2)] = 0.9
    torch.testing.assert_close(attention_transfer_loss(s2, t2, QMASK, KMASK), base)
    zero = attention_transfer_loss(s, t, torch.zeros_like(QMASK), KMASK)
    assert zero.item() == 0.0


def test_attention_shape_errors():
    a = torch.zeros(2, 4, 5)
    with pytest.raises(ValueError):
        attention_transfer_loss(a, torch.zeros(2, 4, 6), QMASK, KMASK)
    with pytest.raises(ValueError):
        attention_transfer_loss(a, a, QMASK[:, :3], KMASK)
    with pytest.raises(ValueError):
        attention_transfer_loss(a, a, QMASK, KMASK[:, :4])
