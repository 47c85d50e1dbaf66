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


def structured_stages(
    final: float, finetune_steps: int, schedule: tuple[int, int, int] | None
) -> list[tuple[float, int]]:
    """``(target sparsity of the original width, fine-tuning steps after it)`` per stage of
    structured pruning, which runs after training because each stage builds a smaller model.

    No schedule: one stage to ``final``, then ``finetune_steps`` of recovery. A schedule
    ``(start, end, frequency)`` prunes at ``start, start + frequency, ...`` (before ``end``),
    each stage to the cubic target of the end of its interval (so the last stage, at ``final``,
    is followed by fine-tuning too) and fine-tunes until the next stage; the last one until the
    phase ends. The phase is ``finetune_steps`` long, its steps counted as the schedule's; a
    schedule that belongs to training (``finetune_steps == 0``, as in ``compress=prune``) is
    replayed after training over its own span, ``end - start`` steps.
    """
    if schedule is None:
        return [(final, finetune_steps)]
    start, end, frequency = schedule
    if finetune_steps == 0:
        start, end, finetune_steps = 0, end - start, end - start
    steps = list(range(start, end, frequency)) or [start]
    stages = [(0.0, start)] if start > 0 else []  # the unpruned model before the schedule
    for i, t in enumerate(steps):
        until = steps[i + 1] if i + 1 < len(steps) else finetune_steps
        stages.append((cubic_sparsity(min(t + frequency, end), final, start, end), until - t))
    return stages
