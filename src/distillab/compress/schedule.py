"""Zhu & Gupta (2017) gradual pruning schedule: sparsity rises fast early, slowly near the end,
when fewer redundant weights are left to remove."""

from __future__ import annotations


def cubic_sparsity(
    step: int, final: float, start_step: int, end_step: int, initial: float = 0.0
) -> float:
    """``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** 3`` for ``t0 <= t <= t1``;
    ``s_i`` before ``t0`` and ``s_f`` from ``t1`` on (a single step when ``t1 <= t0``)."""
    if step < start_step:
        return initial
    if step >= end_step:
        return final
    progress = (step - start_step) / (end_step - start_step)
    return final + (initial - final) * (1.0 - progress) ** 3
