"""Logit-level knowledge-distillation losses against full teacher distributions (Hinton et
al., 2015): one teacher's logits, or several teachers mixed in probability space.

Masking, averaging and precision follow :mod:`distillab.losses.rows`; the divergence is
named (:mod:`distillab.losses.divergences`). The cached teacher's top-k form is
:mod:`distillab.losses.topk`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from distillab.losses.divergences import get_divergence
from distillab.losses.rows import (
    check_beta,
    check_mask,
    compute_dtype,
    mean_over_rows,
    select_rows,
)

__all__ = ["average_teacher_probs", "kd_loss", "kd_loss_from_probs"]


def _divergence_loss(
    student_logits: Tensor,
    teacher_log_probs: Tensor,
    t: float,
    mask: Tensor | None,
    divergence: str,
    beta: float,
) -> Tensor:
    """``T^2 * mean over counted rows of D(p || q)``; ``teacher_log_probs`` already at ``T``."""
    fn = get_divergence(divergence)
    check_beta(beta)
    mask = check_mask(mask, student_logits.shape[:-1], "student_logits")
    dtype = compute_dtype(student_logits.dtype)
    s = select_rows(student_logits, mask).to(dtype)
    log_p = teacher_log_probs.detach().to(dtype).reshape(s.shape)
    # an underflowed teacher probability is the smallest normal one, so that a divergence
    # reading log p where q > 0 (reverse KL, JSD) stays finite; masked rows are uniform on
    # both sides (the student's are zeroed logits): they add exactly 0 and get zero gradient
    log_p = log_p.clamp(min=math.log(torch.finfo(dtype).tiny))
    if mask is not None:
        log_p = torch.where(mask.reshape(-1, 1), log_p, -math.log(s.shape[-1]))
    log_q = F.log_softmax(s / t, dim=-1)
    return mean_over_rows(fn(log_p, log_q, beta), mask) * (t * t)


def kd_loss_from_probs(
    student_logits: Tensor,
    teacher_probs: Tensor,
    temperature: float,
    mask: Tensor | None = None,
    divergence: str = "forward_kl",
    beta: float = 0.5,
) -> Tensor:
    """KD loss against a teacher given as an already temperature-softened distribution.

    Exists so that several teachers can be combined in probability space (see
    :func:`average_teacher_probs`) and still share the one implementation used by
    :func:`kd_loss`. ``teacher_probs`` must be ``softmax(teacher_logits / T)`` (or a convex
    combination of such), same shape as ``student_logits``; it is detached.

    Returns ``T^2 * mean_{unmasked i} D(teacher_probs_i, softmax(student_logits_i / T))`` with
    ``D`` the named divergence (:mod:`distillab.losses.divergences`).
    """
    t = float(temperature)
    if student_logits.shape != teacher_probs.shape:
        raise ValueError(
            f"student_logits shape {tuple(student_logits.shape)} != teacher_probs shape "
            f"{tuple(teacher_probs.shape)}"
        )
    dtype = compute_dtype(student_logits.dtype)
    log_p = torch.log(teacher_probs.detach().to(dtype))
    return _divergence_loss(student_logits, log_p, t, mask, divergence, beta)


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float,
    mask: Tensor | None = None,
    divergence: str = "forward_kl",
    beta: float = 0.5,
) -> Tensor:
    r"""Temperature-scaled distillation loss (Hinton et al., 2015) under a chosen divergence.

    .. math::

        \mathcal{L} = \frac{T^2}{|M|} \sum_{i \in M} D(p_i, q_i),
        \quad p_i = \mathrm{softmax}(z^t_i / T),\; q_i = \mathrm{softmax}(z^s_i / T)

    i.e. the mean over unmasked positions ``M`` of the divergence, times ``T^2``. With the
    default ``forward_kl``, ``D = KL(p || q)``; ``reverse_kl``, ``jsd`` (``beta`` in [0, 1],
    normalised by ``beta (1 - beta)``) and ``tvd`` are defined in
    :mod:`distillab.losses.divergences`. The ``T^2`` factor keeps gradient magnitudes
    comparable across temperatures (the gradient of the softened KL shrinks like ``1/T^2``),
    so ``temperature`` can be tuned without retuning the loss weight.

    Args:
        student_logits: ``[..., vocab]``; receives gradients.
        teacher_logits: ``[..., vocab]``, same shape; detached (no gradient to the teacher).
        temperature: softening temperature ``T > 0`` (range-checked once, by the config).
        mask: optional bool ``[...]``; ``True`` = position counts. All-``False`` gives ``0``.
        divergence: a name in :data:`distillab.losses.divergences.DIVERGENCES`.
        beta: the JSD's mixing weight of the teacher, in ``[0, 1]`` (other divergences ignore
            it).

    Raises:
        ValueError: if shapes mismatch, an unknown divergence or ``beta`` outside ``[0, 1]``.
    """
    t = float(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits shape {tuple(student_logits.shape)} != teacher_logits shape "
            f"{tuple(teacher_logits.shape)}"
        )
    dtype = compute_dtype(student_logits.dtype)
    log_p = F.log_softmax(teacher_logits.detach().to(dtype) / t, dim=-1)
    return _divergence_loss(student_logits, log_p, t, mask, divergence, beta)


def average_teacher_probs(
    teacher_logits: Sequence[Tensor],
    weights: Sequence[float] | None,
    temperature: float,
) -> Tensor:
    """Weighted average of the teachers' softened distributions ``softmax(logits_j / T)``.

    Averaging happens in probability space (not logit space) so the result is a proper
    mixture of the teachers; feed it to :func:`kd_loss_from_probs`. ``weights`` are
    normalised to sum to 1; ``None`` means uniform. Computed in at least float32.

    Raises:
        ValueError: no teachers, shape mismatch between teachers, ``len(weights)`` not equal
            to the number of teachers, negative/non-finite weights or all-zero weights.
    """
    t = float(temperature)
    logits = list(teacher_logits)
    if not logits:
        raise ValueError("teacher_logits must contain at least one teacher")
    shape = logits[0].shape
    for j, lg in enumerate(logits):
        if lg.shape != shape:
            raise ValueError(
                f"teacher_logits[{j}] shape {tuple(lg.shape)} != teacher_logits[0] shape "
                f"{tuple(shape)}"
            )
    if weights is None:
        w = [1.0] * len(logits)
    else:
        w = [float(x) for x in weights]
        if len(w) != len(logits):
            raise ValueError(f"got {len(w)} weights for {len(logits)} teachers")
        if any(not math.isfinite(x) or x < 0 for x in w):
            raise ValueError(f"weights must be finite and non-negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"weights must not all be zero, got {w}")

    dtype = compute_dtype(logits[0].dtype)
    out: Tensor | None = None
    for wj, lg in zip(w, logits, strict=True):
        if wj == 0:
            continue
        term = F.softmax(lg.to(dtype) / t, dim=-1) * (wj / total)
        out = term if out is None else out + term
    assert out is not None  # total > 0 guarantees at least one non-zero weight
    return out
