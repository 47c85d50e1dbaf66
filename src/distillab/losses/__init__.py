"""Distillation losses: logit-level KD and intermediate-representation transfer."""

from distillab.losses.kd import average_teacher_probs, kd_loss, kd_loss_from_probs, topk_kd_loss
from distillab.losses.objective import DistillObjective
from distillab.losses.transfer import attention_transfer_loss, hidden_state_loss

__all__ = [
    "DistillObjective",
    "attention_transfer_loss",
    "average_teacher_probs",
    "hidden_state_loss",
    "kd_loss",
    "kd_loss_from_probs",
    "topk_kd_loss",
]
