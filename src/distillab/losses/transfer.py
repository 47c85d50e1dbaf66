"""Intermediate-representation transfer losses (hidden states, attention maps).

Like the logit losses in :mod:`distillab.losses.kd`, masked positions are dropped before any
arithmetic (so padding never contributes and gets exactly zero gradient), the teacher is
detached, and a fully masked batch yields ``0`` with the graph intact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["attention_transfer_loss", "hidden_state_loss"]

_ATTN_EPS = 1e-8


def _as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def hidden_state_loss(
    student_states: Tensor,
    teacher_states: Tensor,
    mask: Tensor,
    projection: nn.Module | None = None,
) -> Tensor:
    """MSE between student and teacher hidden states over unmasked positions.

    The mean is taken over counted positions *and* features, so the value does not depend on
    padding or hidden size. If given, ``projection`` (e.g. ``nn.Linear(Hs, Ht)``, trained
    jointly with the student) is applied to the student states -- required when the hidden
    sizes differ. It is applied only to counted positions.

    Args:
        student_states: ``[B, T, Hs]``.
        teacher_states: ``[B, T, Ht]``; detached.
        mask: bool ``[B, T]``; ``True`` = position counts.
        projection: module mapping ``Hs -> Ht``.

    Raises:
        ValueError: on mismatched ``[B, T]`` / mask shapes, or ``Hs != Ht`` without a
            projection (or a projection whose output size is not ``Ht``).
    """
    if student_states.dim() != 3 or teacher_states.dim() != 3:
        raise ValueError(
            f"expected [B, T, H] states, got student {tuple(student_states.shape)} and "
            f"teacher {tuple(teacher_states.shape)}"
        )
    if student_states.shape[:2] != teacher_states.shape[:2]:
        raise ValueError(
            f"student_states shape {tuple(student_states.shape)} and teacher_states shape "
            f"{tuple(teacher_states.shape)} differ in [B, T]"
        )
    if mask.shape != student_states.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} != [B, T] = {tuple(student_states.shape[:2])}"
        )
    hs, ht = student_states.shape[-1], teacher_states.shape[-1]
    if hs != ht and projection is None:
        raise ValueError(
            f"student hidden size {hs} != teacher hidden size {ht}; pass a projection "
            f"(e.g. nn.Linear({hs}, {ht}))"
        )
    mask = _as_bool(mask)

    s = student_states[mask]
    if projection is not None:
        s = projection(s)
        if s.shape[-1] != ht:
            raise ValueError(
                f"projection maps student hidden size {hs} to {s.shape[-1]}, "
                f"expected teacher hidden size {ht}"
            )
    dtype = _compute_dtype(s.dtype)
    t = teacher_states.detach()[mask].to(dtype)
    sq = (s.to(dtype) - t).pow(2)
    return sq.sum() / max(sq.numel(), 1)


def attention_transfer_loss(
    student_attn: Tensor,
    teacher_attn: Tensor,
    query_mask: Tensor,
    key_mask: Tensor,
) -> Tensor:
    """KL(teacher || student) between attention distributions, per query row.

    Both maps are post-softmax attention probabilities ``[B, Tq, Tk]`` (average or select
    heads beforehand). For each unmasked query row the loss is
    ``sum_k p_t (log(p_t + eps) - log(p_s + eps))`` over unmasked keys, averaged over
    unmasked query rows. Masked keys are zeroed on both sides, so they contribute nothing;
    ``eps`` keeps the logs finite where a probability is 0 (masked keys, or a student that
    puts no mass where the teacher does) and makes identical maps give exactly 0. Masked
    query rows are dropped first, so ``NaN`` rows (all keys masked) in the inputs are safe.

    Args:
        student_attn: ``[B, Tq, Tk]``; receives gradients.
        teacher_attn: ``[B, Tq, Tk]``; detached.
        query_mask: bool ``[B, Tq]``; ``True`` = query row counts.
        key_mask: bool ``[B, Tk]``; ``True`` = key is attendable.
    """
    if student_attn.shape != teacher_attn.shape or student_attn.dim() != 3:
        raise ValueError(
            f"student_attn shape {tuple(student_attn.shape)} and teacher_attn shape "
            f"{tuple(teacher_attn.shape)} must be equal and [B, Tq, Tk]"
        )
    b, tq, tk = student_attn.shape
    if query_mask.shape != (b, tq):
        raise ValueError(f"query_mask shape {tuple(query_mask.shape)} != [B, Tq] = {(b, tq)}")
    if key_mask.shape != (b, tk):
        raise ValueError(f"key_mask shape {tuple(key_mask.shape)} != [B, Tk] = {(b, tk)}")
    query_mask, key_mask = _as_bool(query_mask), _as_bool(key_mask)

    dtype = _compute_dtype(student_attn.dtype)
    keys = key_mask[:, None, :].expand(b, tq, tk)[query_mask]  # [N, Tk]
    s = student_attn[query_mask].to(dtype).masked_fill(~keys, 0.0)
    p = teacher_attn.detach()[query_mask].to(dtype).masked_fill(~keys, 0.0)
    per_row = (p * (torch.log(p + _ATTN_EPS) - torch.log(s + _ATTN_EPS))).sum(-1)
    return per_row.sum() / max(per_row.numel(), 1)
