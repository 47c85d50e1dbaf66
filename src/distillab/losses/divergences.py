r"""Divergences between the teacher's and the student's next-token distributions, by name.

Each is a small function of per-row log-probabilities ``(log_p, log_q, beta) -> [N]`` with
``p`` the (detached) teacher and ``q`` the student, both already softened at the distillation
temperature; :func:`distillab.losses.kd_loss` masks, averages and scales them by ``T^2``.
``distill.objective.divergence`` names one of :data:`DIVERGENCES`; adding one is one function
and one entry there.

* ``forward_kl``: ``KL(p || q) = sum_v p (log p - log q)`` (Hinton et al.: mode covering);
* ``reverse_kl``: ``KL(q || p) = sum_v q (log q - log p)`` (mode seeking, as in MiniLLM);
* ``jsd``: with ``m = beta p + (1 - beta) q``,
  ``(beta KL(p || m) + (1 - beta) KL(q || m)) / (beta (1 - beta))``. The division makes it
  continuous on ``[0, 1]``: forward KL at ``beta = 0`` and reverse KL at ``beta = 1`` (the
  limits, used exactly there). The undivided form (e.g. TRL's generalised JSD) is this value
  times ``beta (1 - beta)`` and vanishes at both ends; at ``beta = 0.5`` it is 4x smaller.
* ``tvd``: total variation ``0.5 sum_v |p - q|`` (bounded by 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from distillab.config import constants

Divergence = Callable[[Tensor, Tensor, float], Tensor]  # (log_p, log_q, beta) -> [N]


def _kl(log_a: Tensor, log_b: Tensor) -> Tensor:
    """Per-row ``KL(a || b)`` from log-probabilities, with ``0 log 0 = 0``."""
    a = log_a.exp()
    zero = a == 0
    diff = (log_a - log_b).masked_fill(zero, 0.0)
    return (a * diff).sum(-1)


def forward_kl(log_p: Tensor, log_q: Tensor, beta: float = 0.5) -> Tensor:
    return _kl(log_p, log_q)


def reverse_kl(log_p: Tensor, log_q: Tensor, beta: float = 0.5) -> Tensor:
    return _kl(log_q, log_p)


def jsd(log_p: Tensor, log_q: Tensor, beta: float = 0.5) -> Tensor:
    if beta == 0.0:
        return forward_kl(log_p, log_q)
    if beta == 1.0:
        return reverse_kl(log_p, log_q)
    log_m = torch.logaddexp(
        log_p + torch.log(torch.tensor(beta, dtype=log_p.dtype)),
        log_q + torch.log(torch.tensor(1.0 - beta, dtype=log_q.dtype)),
    )
    mixed = beta * _kl(log_p, log_m) + (1.0 - beta) * _kl(log_q, log_m)
    return mixed / (beta * (1.0 - beta))


def tvd(log_p: Tensor, log_q: Tensor, beta: float = 0.5) -> Tensor:
    return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(-1)


DIVERGENCES: dict[str, Divergence] = {
    "forward_kl": forward_kl,
    "reverse_kl": reverse_kl,
    "jsd": jsd,
    "tvd": tvd,
}

# divergences the top-k + tail-draw cache has an estimator for (see `topk_kd_loss`): its
# sparse target is unbiased for the forward KL's gradient only; jsd at beta = 0 is forward KL
CACHED_DIVERGENCES = constants.CACHED_DIVERGENCES


def get_divergence(name: str) -> Divergence:
    try:
        return DIVERGENCES[name]
    except KeyError:
        raise ValueError(f"divergence={name!r} must be one of {sorted(DIVERGENCES)}") from None


__all__ = ["CACHED_DIVERGENCES", "DIVERGENCES", "Divergence", "get_divergence"]
