"""KD against the teacher-output cache: a teacher stored as its top-k log-probabilities plus
draws from its tail (`teachers.cache`), without the full distribution.

Masking, averaging and precision follow :mod:`distillab.losses.rows`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from distillab.losses.rows import (
    check_mask,
    compute_dtype,
    kl_rows,
    mean_over_rows,
    select_rows,
)

__all__ = ["topk_kd_loss"]


def topk_kd_loss(
    student_logits: Tensor,
    topk_log_probs: Tensor,
    topk_ids: Tensor,
    temperature: float,
    mask: Tensor | None = None,
    student_log_probs: Tensor | None = None,
    tail_samples: int = 0,
    softening_temperature: float = 1.0,
    *,
    full_log_probs: Tensor | None = None,
    dense: Tensor | None = None,
) -> Tensor:
    r"""KD against a teacher stored as its top-k log-probabilities plus samples of its tail
    (the teacher-output cache), softened at the cache's own temperature ``T_c``
    (``softening_temperature``), which need not be the distillation temperature ``T``.

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
        temperature: ``T > 0``, the distillation temperature (checked by the config).
        mask: optional bool ``[...]``; ``True`` = position counts.
        student_log_probs: optional ``log_softmax(student_logits / temperature)`` already
            gathered at ``topk_ids`` (``[..., k + S]``; e.g. at T=1 in one gather with the
            gold tokens of the cross-entropy); used instead of computing it.
        tail_samples: ``S``, how many of the last columns are tail draws.
        softening_temperature: ``T_c > 0``, the temperature ``topk_log_probs`` were softened
            at (the cache's, `TeacherCache.softening_temperature`).
        full_log_probs: the student's [..., vocab] log_softmax at T=1, which every codec's
            estimator is offered (`teachers.codecs.Codec.estimator`); read at T=1 when
            ``student_log_probs`` is not given (instead of a second softmax).
        dense: the student's reads along the codec's dense vectors, offered likewise; not
            read (this codec has none).
    """
    t = float(temperature)
    r = float(softening_temperature) / t
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
    mask = check_mask(mask, student_logits.shape[:-1], "student_logits")
    dtype = compute_dtype(student_logits.dtype)

    # Speed: this runs every training step of a cached-teacher student, so only the small
    # [N, k] teacher side is masked; the [N, V] student side is used as is and masked rows are
    # dropped from the per-row loss, which gives them exactly zero gradient.
    s = student_logits.reshape(-1, student_logits.shape[-1]).to(dtype)
    lp = select_rows(topk_log_probs.detach(), mask).to(dtype)
    ids = select_rows(topk_ids, mask).long()
    if student_log_probs is not None:
        log_q = student_log_probs.reshape(ids.shape).to(dtype)
    elif t == 1.0 and full_log_probs is not None:
        log_q = full_log_probs.reshape(s.shape).to(dtype).gather(-1, ids)
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
    per_row = kl_rows(log_p.exp(), log_p_token, log_q)
    return mean_over_rows(per_row, mask) * (t * t)
