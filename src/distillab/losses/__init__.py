"""Distillation losses: logit-level KD, intermediate-representation transfer, named terms."""

from distillab.losses.context import LossContext
from distillab.losses.kd import average_teacher_probs, kd_loss, kd_loss_from_probs
from distillab.losses.objective import Objective, distill_objective
from distillab.losses.topk import topk_kd_loss
from distillab.losses.transfer import attention_transfer_loss, hidden_state_loss

__all__ = [
    "LossContext",
    "Objective",
    "attention_transfer_loss",
    "average_teacher_probs",
    "distill_objective",
    "hidden_state_loss",
    "kd_loss",
    "kd_loss_from_probs",
    "topk_kd_loss",
]
