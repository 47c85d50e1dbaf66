"""The conventions every logit-level KD loss shares (`losses.kd`, `losses.topk`).

* logits are ``[..., vocab]``; an optional boolean ``mask`` of shape ``[...]`` marks the
  positions that count (``True``), e.g. response tokens that are not padding;
* the result is the mean over counted positions, so the loss scale does not depend on
  batch size or sequence length; a fully masked input gives ``0`` (still attached to the
  graph, so ``backward()`` works and yields zero gradients rather than ``NaN``);
* the teacher side is detached: only the student receives gradients;
* softmax and divergence sums run in at least float32.

Masked positions are dropped *before* any softmax, so padding rows never enter the
computation (no ``NaN`` from garbage or ``-inf`` logits there) and receive exactly zero
gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Do the softmax/KL in at least float32: half-precision KL sums are too lossy."""
    return torch.promote_types(dtype, torch.float32)


def check_mask(mask: Tensor | None, lead_shape: torch.Size, name: str) -> Tensor | None:
    if mask is None:
        return None
    if mask.shape != lead_shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal the leading dims of {name} "
            f"{tuple(lead_shape)}"
        )
    return mask if mask.dtype == torch.bool else mask != 0


def select_rows(x: Tensor, mask: Tensor | None) -> Tensor:
    """Flatten ``[..., D]`` to ``[N, D]`` with uncounted rows replaced by zeros.

    Zeroing (``torch.where``) instead of boolean indexing keeps shapes static, so the loss
    never waits on the device for a row count (no host sync per step on GPU); masked rows
    still contribute nothing and receive exactly zero gradient, whatever they held.
    """
    x = x.reshape(-1, x.shape[-1])
    if mask is None:
        return x
    return torch.where(mask.reshape(-1, 1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def mean_over_rows(per_row: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over counted rows; ``0`` (with a grad graph) when none counts."""
    if mask is None:
        return per_row.sum() / max(per_row.numel(), 1)
    m = mask.reshape(-1).to(per_row.dtype)
    return (per_row * m).sum() / m.sum().clamp(min=1.0)


def kl_rows(teacher_probs: Tensor, teacher_log_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """Per-row ``sum_v p (log p - log q)``, with the convention ``0 * log 0 = 0``.

    Where ``p == 0`` the term is defined as 0; ``log q`` is zeroed there too so that a
    ``-inf`` student log-prob (e.g. a banned token) cannot turn ``0 * -inf`` into ``NaN``.
    """
    zero = teacher_probs == 0
    log_p = teacher_log_probs.masked_fill(zero, 0.0)
    log_q = student_log_probs.masked_fill(zero, 0.0)
    return (teacher_probs * (log_p - log_q)).sum(-1)


def check_beta(beta: float) -> float:
    """The JSD's mixing weight must lie in [0, 1]."""
    b = float(beta)
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    return b
