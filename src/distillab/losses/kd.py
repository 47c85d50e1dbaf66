"""Logit-level knowledge-distillation losses (Hinton et al., 2015).

All losses here share three conventions:

* logits are ``[..., vocab]``; an optional boolean ``mask`` of shape ``[...]`` marks the
  positions that count (``True``), e.g. response tokens that are not padding;
* the result is the mean over counted positions, so the loss scale does not depend on
  batch size or sequence length; a fully masked input gives ``0`` (still attached to the
  graph, so ``backward()`` works and yields zero gradients rather than ``NaN``);
* the teacher side is detached: only the student receives gradients.

Masked positions are dropped *before* any softmax, so padding rows never enter the
computation (no ``NaN`` from garbage or ``-inf`` logits there) and receive exactly zero
gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from distillab.losses.divergences import get_divergence

__all__ = [
    "average_teacher_probs",
    "check_beta",
    "kd_loss",
    "kd_loss_from_probs",
    "topk_kd_loss",
]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Do the softmax/KL in at least float32: half-precision KL sums are too lossy."""
    return torch.promote_types(dtype, torch.float32)


def _check_mask(mask: Tensor | None, lead_shape: torch.Size, name: str) -> Tensor | None:
    if mask is None:
        return None
    if mask.shape != lead_shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal the leading dims of {name} "
            f"{tuple(lead_shape)}"
        )
    return mask if mask.dtype == torch.bool else mask != 0


def _select_rows(x: Tensor, mask: Tensor | None) -> Tensor:
    """Flatten ``[..., D]`` to ``[N, D]`` with uncounted rows replaced by zeros.

    Zeroing (``torch.where``) instead of boolean indexing keeps shapes static, so the loss
    never waits on the device for a row count (no host sync per step on GPU); masked rows
    still contribute nothing and receive exactly zero gradient, whatever they held.
    """
    x = x.reshape(-1, x.shape[-1])
    if mask is None:
        return x
    return torch.where(mask.reshape(-1, 1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def _mean_over_rows(per_row: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over counted rows; ``0`` (with a grad graph) when none counts."""
    if mask is None:
        return per_row.sum() / max(per_row.numel(), 1)
    m = mask.reshape(-1).to(per_row.dtype)
    return (per_row * m).sum() / m.sum().clamp(min=1.0)


def _kl_rows(teacher_probs: Tensor, teacher_log_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """Per-row ``sum_v p (log p - log q)``, with the convention ``0 * log 0 = 0``.

    Where ``p == 0`` the term is defined as 0; ``log q`` is zeroed there too so that a
    ``-inf`` student log-prob (e.g. a banned token) cannot turn ``0 * -inf`` into ``NaN``.
    """
    zero = teacher_probs == 0
    log_p = teacher_log_probs.masked_fill(zero, 0.0)
    log_q = student_log_probs.masked_fill(zero, 0.0)
    return (teacher_probs * (log_p - log_q)).sum(-1)


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
    mask = _check_mask(mask, student_logits.shape[:-1], "student_logits")
    dtype = _compute_dtype(student_logits.dtype)
    s = _select_rows(student_logits, mask).to(dtype)
    log_p = teacher_log_probs.detach().to(dtype).reshape(s.shape)
    # an underflowed teacher probability is the smallest normal one, so that a divergence
    # reading log p where q > 0 (reverse KL, JSD) stays finite; masked rows are uniform on
    # both sides (the student's are zeroed logits): they add exactly 0 and get zero gradient
    log_p = log_p.clamp(min=math.log(torch.finfo(dtype).tiny))
    if mask is not None:
        log_p = torch.where(mask.reshape(-1, 1), log_p, -math.log(s.shape[-1]))
    log_q = F.log_softmax(s / t, dim=-1)
    return _mean_over_rows(fn(log_p, log_q, beta), mask) * (t * t)


def check_beta(beta: float) -> float:
    b = float(beta)
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    return b


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
    dtype = _compute_dtype(student_logits.dtype)
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
        temperature: softening temperature ``T > 0``.
        mask: optional bool ``[...]``; ``True`` = position counts. All-``False`` gives ``0``.
        divergence: a name in :data:`distillab.losses.divergences.DIVERGENCES`.
        beta: the JSD's mixing weight of the teacher, in ``[0, 1]`` (other divergences ignore
            it).

    Raises:
        ValueError: if ``temperature <= 0``, shapes mismatch, an unknown divergence or
            ``beta`` outside ``[0, 1]``.
    """
    t = float(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits shape {tuple(student_logits.shape)} != teacher_logits shape "
            f"{tuple(teacher_logits.shape)}"
        )
    dtype = _compute_dtype(student_logits.dtype)
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
            to the number of teachers, negative/non-finite weights or all-zero weights, or a
            bad ``temperature``.
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

    dtype = _compute_dtype(logits[0].dtype)
    out: Tensor | None = None
    for wj, lg in zip(w, logits, strict=True):
        if wj == 0:
            continue
        term = F.softmax(lg.to(dtype) / t, dim=-1) * (wj / total)
        out = term if out is None else out + term
    assert out is not None  # total > 0 guarantees at least one non-zero weight
    return out


def topk_kd_loss(
    student_logits: Tensor,
    topk_log_probs: Tensor,
    topk_ids: Tensor,
    temperature: float,
    mask: Tensor | None = None,
    student_log_probs: Tensor | None = None,
    tail_samples: int = 0,
    cache_temperature: float = 1.0,
) -> Tensor:
    r"""KD against a teacher stored as its top-k log-probabilities plus samples of its tail
    (the teacher-output cache), softened at the cache temperature ``T_c``.

    The stored distribution is ``\tilde p = softmax(z / T_c)``. The last ``tail_samples``
    columns are not top tokens but ``S`` draws, with replacement, from ``\tilde p`` restricted to
    the tokens outside the top ``k`` (values: their log ``\tilde p``). Together they give a
    sparse target ``\hat p`` whose expectation is ``\tilde p``: a top token keeps ``\tilde p_j``;
    each draw carries ``\tilde P / S`` of the tail mass ``\tilde P = 1 - \sum_{top} \tilde p_j``.
    At ``T == T_c`` the student's gradient ``(q - \hat p) T`` is therefore an unbiased estimate
    of the full-teacher gradient on every token, the tail included (a top-k alone leaves the
    tail untaught); that is why a job caches at its own temperature. At another ``T`` (a
    temperature schedule) the target ``\tilde p^{r}``, ``r = T_c / T``, is renormalised over
    the columns, a draw of token ``j`` weighing ``(\tilde P / S) \tilde p_j^{r - 1}``
    (importance weights: consistent, biased for small ``S``, noisy for ``r < 1``). With
    ``tail_samples == 0`` the top-k is renormalised and the tail is dropped.

    .. math::

        \mathcal{L} = \frac{T^2}{|M|} \sum_{i \in M} \sum_{j} \hat p_{i,j}
            (\log \hat p_{i,j} - \log q_{i,j}),\quad q_i = \mathrm{softmax}(z^s_i / T)

    over the distinct stored tokens ``j`` (a token drawn ``c`` times carries ``c`` draws'
    weight). Repeated draws must be adjacent (the cache stores draws sorted by id) for the
    value to merge them; the gradient is the same either way. It equals :func:`kd_loss`
    exactly when ``k == vocab``.

    Args:
        student_logits: ``[..., vocab]``; must be finite (model outputs are).
        topk_log_probs: ``[..., k + S]`` teacher log-probabilities at ``T_c`` (fp16
            typical); detached. Top columns first, then the tail draws.
        topk_ids: ``[..., k + S]`` int32/int64 token ids in ``[0, vocab)``; top ids distinct,
            draws sorted.
        temperature: ``T > 0``.
        mask: optional bool ``[...]``; ``True`` = position counts.
        student_log_probs: optional ``log_softmax(student_logits)`` already gathered at
            ``topk_ids`` (``[..., k + S]``; e.g. in one gather with the gold tokens of the
            cross-entropy); used instead of recomputing it when ``temperature == 1``.
        tail_samples: ``S``, how many of the last columns are tail draws.
        cache_temperature: ``T_c > 0``, the temperature ``topk_log_probs`` were softened at.
    """
    t = float(temperature)
    r = float(cache_temperature) / t
    if topk_log_probs.shape != topk_ids.shape:
        raise ValueError(
            f"topk_log_probs shape {tuple(topk_log_probs.shape)} != topk_ids shape "
            f"{tuple(topk_ids.shape)}"
        )
    if student_logits.shape[:-1] != topk_log_probs.shape[:-1]:
        raise ValueError(
            f"leading dims of student_logits shape {tuple(student_logits.shape)} != those of "
            f"topk_log_probs shape {tuple(topk_log_probs.shape)}"
        )
    n_top = topk_log_probs.shape[-1] - tail_samples
    if not 0 <= tail_samples <= topk_log_probs.shape[-1]:
        raise ValueError(
            f"tail_samples={tail_samples} must be in [0, {topk_log_probs.shape[-1]}] (columns)"
        )
    if n_top > student_logits.shape[-1]:
        raise ValueError(f"k={n_top} exceeds vocab size {student_logits.shape[-1]}")
    if topk_ids.is_floating_point() or topk_ids.is_complex():
        raise ValueError(f"topk_ids must be an integer tensor, got {topk_ids.dtype}")
    mask = _check_mask(mask, student_logits.shape[:-1], "student_logits")
    dtype = _compute_dtype(student_logits.dtype)

    # Speed: this runs every training step of a cached-teacher student, so only the small
    # [N, k] teacher side is masked; the [N, V] student side is used as is and masked rows are
    # dropped from the per-row loss, which gives them exactly zero gradient.
    s = student_logits.reshape(-1, student_logits.shape[-1]).to(dtype)
    lp = _select_rows(topk_log_probs.detach(), mask).to(dtype)
    ids = _select_rows(topk_ids, mask).long()
    if t == 1.0 and student_log_probs is not None:
        log_q = student_log_probs.reshape(ids.shape)
    else:
        log_q = F.log_softmax(s if t == 1.0 else s / t, dim=-1).gather(-1, ids)
    top, drawn = lp[:, :n_top], lp[:, n_top:]
    log_w = top * r
    if tail_samples:
        log_tail = torch.log1p(-top.exp().sum(-1, keepdim=True).clamp(max=1.0 - 1e-6))
        log_w = torch.cat([log_w, log_tail - math.log(tail_samples) + (r - 1) * drawn], -1)
    log_p = F.log_softmax(log_w, dim=-1)  # one weight per column
    log_p_token = log_p  # log of the weight of each column's token (repeated draws summed)
    if tail_samples:  # a run of c equal (adjacent) draws is one token with c draws' weight
        d = ids[:, n_top:]
        starts = torch.cat([torch.ones_like(d[:, :1], dtype=torch.bool), d[:, 1:] != d[:, :-1]], 1)
        run = starts.cumsum(-1) - 1
        ones = torch.ones((), dtype=dtype, device=d.device).expand(d.shape)
        repeats = torch.zeros(d.shape, dtype=dtype, device=d.device).scatter_add_(1, run, ones)
        log_repeats = repeats.gather(1, run).log()
        log_p_token = torch.cat([log_p[:, :n_top], log_p[:, n_top:] + log_repeats], -1)
    per_row = _kl_rows(log_p.exp(), log_p_token, log_q)
    return _mean_over_rows(per_row, mask) * (t * t)
