"""The distillation objective: how gold, teacher logits, hidden states and attention combine.

    loss = (1 - alpha) * CE(student, gold)
         + alpha * T^2 * KL(teacher_T || student_T)          (teachers averaged, weighted)
         + beta  * MSE(proj(student enc states), teacher enc states)
         + gamma * KL(teacher attention || student attention)

alpha and T may follow a linear schedule from their start to `*_end` over training.
Padding never counts. Hidden-state and attention transfer use the first teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor, nn

from distillab.errors import check_range
from distillab.losses.kd import average_teacher_probs, kd_loss_from_probs, topk_kd_loss
from distillab.losses.transfer import attention_transfer_loss, hidden_state_loss
from distillab.models import Seq2SeqOutput


class CachedTeacher(NamedTuple):
    """A batch's cached teacher outputs (see `modules.teacher_cache`): per target token the
    top-k and tail-draw log-probabilities and ids; how many trailing columns are draws; the
    temperature the cache was softened at."""

    values: Tensor
    ids: Tensor
    tail_samples: int
    temperature: float


def linear(start: float, end: float | None, progress: float) -> float:
    """`start` when `end` is None (constant), else linear interpolation; progress in [0, 1]."""
    if end is None:
        return start
    return start + (end - start) * min(max(progress, 0.0), 1.0)


class DistillObjective(nn.Module):
    """Holds the loss weights and the (trainable) student->teacher hidden projection."""

    def __init__(
        self,
        alpha: float = 0.5,
        temperature: float = 1.0,
        alpha_end: float | None = None,
        temperature_end: float | None = None,
        beta: float = 0.0,
        gamma: float = 0.0,
        student_hidden: int | None = None,
        teacher_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_range("distill.objective.alpha", alpha, 0.0, 1.0)
        check_range("distill.objective.temperature", temperature, 0.0, 100.0, low_inclusive=False)
        if alpha_end is not None:
            check_range("distill.objective.alpha_end", alpha_end, 0.0, 1.0)
        if temperature_end is not None:
            check_range(
                "distill.objective.temperature_end",
                temperature_end,
                0.0,
                100.0,
                low_inclusive=False,
            )
        check_range("distill.objective.beta", beta, 0.0, None)
        check_range("distill.objective.gamma", gamma, 0.0, None)
        self.alpha, self.alpha_end = alpha, alpha_end
        self.temperature, self.temperature_end = temperature, temperature_end
        self.beta, self.gamma = beta, gamma
        self.projection: nn.Module | None = None
        if beta > 0 and student_hidden and teacher_hidden and student_hidden != teacher_hidden:
            self.projection = nn.Linear(student_hidden, teacher_hidden)

    def weights(self, progress: float) -> tuple[float, float]:
        """(alpha, temperature) at this point of training."""
        return (
            linear(self.alpha, self.alpha_end, progress),
            linear(self.temperature, self.temperature_end, progress),
        )

    @property
    def needs_full_teacher(self) -> bool:
        """Hidden-state or attention transfer need the teacher's internals, not just logits."""
        return self.beta > 0 or self.gamma > 0

    def forward(
        self,
        student: Seq2SeqOutput,
        gold_ce: Tensor,
        batch: dict,
        progress: float,
        teachers: Sequence[Seq2SeqOutput] = (),
        teacher_weights: Sequence[float] | None = None,
        topk: CachedTeacher | None = None,
        log_probs: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Loss terms, already weighted. Give `teachers` (online) or `topk` (the cached teacher
        outputs of the batch); with `topk`, `log_probs` (the student's log_softmax at T=1,
        gathered at the cached ids) is reused at T=1."""
        alpha, temp = self.weights(progress)
        mask = batch["tgt_mask"]
        terms = {"ce": (1.0 - alpha) * gold_ce}
        if alpha > 0:
            if topk is not None:
                kd = topk_kd_loss(
                    student.logits,
                    topk.values,
                    topk.ids,
                    temp,
                    mask,
                    log_probs,
                    topk.tail_samples,
                    topk.temperature,
                )
            else:
                probs = average_teacher_probs([t.logits for t in teachers], teacher_weights, temp)
                kd = kd_loss_from_probs(student.logits, probs, temp, mask)
            terms["kd"] = alpha * kd
        if self.beta > 0:
            terms["hidden"] = self.beta * hidden_state_loss(
                student.enc_states, teachers[0].enc_states, batch["src_mask"], self.projection
            )
        if self.gamma > 0:
            terms["attention"] = self.gamma * attention_transfer_loss(
                student.attn, teachers[0].attn, mask, batch["src_mask"]
            )
        return terms
