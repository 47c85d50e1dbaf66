"""Optimiser and LR-schedule wiring: both come from config as `_partial_` callables.

`conf/optimizer/*.yaml` is any `torch.optim` class (`_partial_: true`): the module calls it with
its parameter groups. `conf/scheduler/*.yaml` is a `_partial_` of a function taking
`(optimizer, total_steps)` and returning a per-step LR scheduler, such as `warmup_schedule`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler
from transformers import get_scheduler

from distillab.config.constants import SCHEDULES
from distillab.errors import check_choice, check_range


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases, norms and gains are not decayed."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def warmup_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    name: str = "linear",
    warmup_steps: int = 100,
) -> LRScheduler:
    """Linear warmup over `warmup_steps` (capped at the run's length), then `name`'s decay
    (transformers' schedules: linear to 0, cosine, or constant)."""
    check_choice("scheduler.name", name, SCHEDULES)
    check_range("scheduler.warmup_steps", warmup_steps, 0, None)
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=min(warmup_steps, total_steps),
        num_training_steps=total_steps,
    )
