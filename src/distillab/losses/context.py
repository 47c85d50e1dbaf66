"""What the loss terms of one training step read (`LossContext`), with the student's
log-probabilities computed once and read in one op per distribution (`losses.reads`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from distillab.data.batch import Batch
from distillab.losses.reads import read_log_probs


@dataclass
class LossContext:
    """Everything a term may read for one training batch."""

    student: Any  # distillab.models.Seq2SeqOutput
    batch: Batch
    pad_id: int
    teacher: Any = None  # distillab.teachers.TeacherOutput (distillation only)
    temperature: float = 1.0
    # False when the batch's responses are the student's own samples (on-policy
    # distillation): terms that need gold responses (`needs_gold`) are skipped
    gold: bool = True

    @cached_property
    def log_probs(self) -> Tensor:
        """The student's log_softmax at T=1, computed once for the CE and KD terms (the
        [tokens, vocab] softmax is the most expensive op of a small model's step)."""
        return F.log_softmax(self.student.logits.float(), dim=-1)

    @cached_property
    def kd_log_probs(self) -> Tensor:
        """The student's log_softmax at the distillation temperature (`log_probs` at T=1)."""
        if self.temperature == 1.0:
            return self.log_probs
        return F.log_softmax(self.student.logits.float() / self.temperature, dim=-1)

    @cached_property
    def gold_read(self) -> Tensor:
        """`log_probs` at the gold tokens [B, T] (at T=1 read with the teacher's columns)."""
        if self.joint:
            return self.joint_read[0][..., 0]
        return self.log_probs.gather(-1, self.batch.tgt_out.unsqueeze(-1)).squeeze(-1)

    @cached_property
    def teacher_read(self) -> TeacherRead:
        """`kd_log_probs` at the teacher's sparse ids [B, T, C] and along its dense vectors
        [B, T, D] (None where it has none)."""
        if self.joint:
            cols, dots = self.joint_read
            return TeacherRead(cols[..., 1:], dots)
        ids, vectors = self.teacher_read_spec
        if ids is None:
            return TeacherRead(None, None)
        return TeacherRead(*read_log_probs(self.kd_log_probs, ids, vectors))

    @property
    def teacher_read_spec(self) -> tuple[Tensor | None, Tensor | None]:
        """Where the teacher's KD reads the student: its sparse ids and dense vectors."""
        if self.teacher is None:
            return None, None
        return self.teacher.sparse_ids, self.teacher.dense_vectors

    @property
    def joint(self) -> bool:
        """At T=1 the gold tokens and the teacher's columns are read from one distribution
        in one op (`losses.reads.read_log_probs`): each separate read's backward would write
        its own [tokens, vocab] gradient, which costs a small model as much as its CE."""
        return self.temperature == 1.0 and self.teacher_read_spec[0] is not None

    @cached_property
    def joint_read(self) -> tuple[Tensor, Tensor | None]:
        ids, vectors = self.teacher_read_spec
        gold = self.batch.tgt_out.unsqueeze(-1)
        return read_log_probs(self.log_probs, torch.cat([gold, ids.to(gold.dtype)], -1), vectors)


class TeacherRead(NamedTuple):
    """What `LossContext.teacher_read` reads: [B, T, C] and [B, T, D]."""

    sparse: Tensor | None
    dense: Tensor | None
