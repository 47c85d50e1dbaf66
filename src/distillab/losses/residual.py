r"""KD against a cached teacher stored as its top-k, a dense guess of its tail from a
cache-wide prior, and signed draws of the guess's residual (the control-variate codec,
`teachers.codecs.residual`).

Masking, averaging and precision follow :mod:`distillab.losses.rows`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from distillab.losses.rows import check_mask, compute_dtype, mean_over_rows, select_rows

__all__ = ["residual_kd_loss"]

EXTRA = 2  # per-token columns after the draws: lambda, the tail's sum p log p


def residual_kd_loss(
    student_logits: Tensor,
    values: Tensor,
    ids: Tensor,
    temperature: float,
    mask: Tensor | None = None,
    student_log_probs: Tensor | None = None,
    tail_samples: int = 0,
    softening_temperature: float = 1.0,
    *,
    prior: Tensor,
    full_log_probs: Tensor | None = None,
    dense: Tensor | None = None,
) -> Tensor:
    r"""Forward KL ``T^2 KL(p || q)`` against the target
    ``t = top + c + \sum_i w_i e_{v_i}``, ``E[t] = p``:

    - ``top``: the top-k probabilities ``p_j`` (columns ``0..k-1`` of ``values``: log p);
    - ``c_v = \lambda m \pi_v / \Pi`` over every token outside the top-k (``m = 1 - \sum_{top}
      p_j``, ``\pi`` = `prior` [vocab], ``\Pi = 1 - \sum_{top} \pi_j``, ``\lambda`` a column);
    - the ``S`` draws, columns ``k..k+S-1``: their signed weights ``w_i``.

    The value is ``\sum_{top} p \log p + h - \sum_v t_v \log q_v`` with ``h`` the tail's
    ``\sum p \log p`` (the last column): an unbiased estimate of the KL; its gradient
    ``T (\sum_v t_v \, q - t)`` one of the full-teacher gradient ``T (q - p)``. The dense term
    is one product of the student's [tokens, vocab] log-probabilities with ``\pi``.

    Args follow :func:`distillab.losses.topk.topk_kd_loss` (``values``/``ids`` ``[..., k + S +
    2]``, the last two ids unused); ``full_log_probs``: the student's log_softmax at T=1,
    ``[..., vocab]``, used at ``temperature == 1`` instead of recomputing it;
    ``student_log_probs`` and ``dense`` (``[..., 1]``), the student's log_softmax at
    ``temperature`` read at ``ids`` and along ``prior`` by the caller (`losses.reads`),
    replace both. The draws hold
    no probabilities, so ``temperature`` must be the cache's ``softening_temperature``.
    """
    t = float(temperature)
    if t != float(softening_temperature):
        raise ValueError(
            f"the residual cache was softened at T={softening_temperature:g}; it has no "
            f"estimator at T={t:g} (no temperature schedule with distill/codec=residual)"
        )
    if values.shape != ids.shape or values.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(
            f"values {tuple(values.shape)}, ids {tuple(ids.shape)} and student_logits "
            f"{tuple(student_logits.shape)} do not match"
        )
    k = values.shape[-1] - tail_samples - EXTRA
    if k < 1:
        raise ValueError(f"{values.shape[-1]} columns hold no top-k beside {tail_samples} draws")
    mask = check_mask(mask, student_logits.shape[:-1], "student_logits")
    dtype = compute_dtype(student_logits.dtype)
    vocab = student_logits.shape[-1]
    # Speed (as in `topk_kd_loss`): only the small teacher side is masked; the [N, V] student
    # side is used as is (finite: model outputs) and its masked rows are dropped from the
    # per-row loss, so a masked row gets exactly zero gradient without a [N, V] select.
    given = student_log_probs is not None and dense is not None
    if given:  # read by the caller (`LossContext.teacher_read`): no [N, V] tensor here
        log_q_all = None
    elif t == 1.0 and full_log_probs is not None:
        log_q_all = full_log_probs.reshape(-1, vocab).to(dtype)
    else:
        s = student_logits.reshape(-1, vocab).to(dtype)
        log_q_all = F.log_softmax(s if t == 1.0 else s / t, dim=-1)
    v = select_rows(values.detach(), mask).to(dtype)
    idx = select_rows(ids, mask).long()[:, : k + tail_samples]
    if given:
        log_q = student_log_probs.reshape(-1, values.shape[-1])[:, : k + tail_samples].to(dtype)
        log_q = torch.where(mask.reshape(-1, 1), log_q, 0.0) if mask is not None else log_q
    else:
        log_q = log_q_all.gather(-1, idx)
    lp_top, w = v[:, :k], v[:, k : k + tail_samples]
    lam, h = v[:, -2], v[:, -1]
    p_top = lp_top.exp()
    mass = (1 - p_top.sum(-1)).clamp(min=0)
    pi = prior.to(device=v.device, dtype=dtype).reshape(vocab)
    pi_top = pi[idx[:, :k]]
    scale = lam * mass / (1 - pi_top.sum(-1)).clamp(min=1e-12)
    along_prior = dense.reshape(-1).to(dtype) if given else log_q_all @ pi
    guess = scale * (along_prior - (pi_top * log_q[:, :k]).sum(-1))
    cross = (p_top * log_q[:, :k]).sum(-1) + guess + (w * log_q[:, k:]).sum(-1)
    per_row = (p_top * lp_top).sum(-1) + h - cross
    return mean_over_rows(per_row, mask) * (t * t)
