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
    def picked(self) -> Picked:
        """`log_probs` at the gold tokens; `kd_log_probs` at the teacher's sparse ids and along
        its dense vectors (None where it has none). Read in one op per distribution
        (`losses.reads.read_log_probs`): each separate read's backward would write its own
        [tokens, vocab] gradient, which costs a small model as much as its CE."""
        gold = self.batch.tgt_out.unsqueeze(-1)
        ids = vectors = None
        if self.teacher is not None:
            ids, vectors = self.teacher.sparse_ids, self.teacher.dense_vectors
        if ids is None:
            return Picked(self.log_probs.gather(-1, gold).squeeze(-1), None, None)
        if self.temperature != 1.0:  # two distributions: the gold tokens' is at T=1
            cols, dots = read_log_probs(self.kd_log_probs, ids, vectors)
            return Picked(self.log_probs.gather(-1, gold).squeeze(-1), cols, dots)
        both = torch.cat([gold, ids.to(gold.dtype)], -1)
        cols, dots = read_log_probs(self.log_probs, both, vectors)
        return Picked(cols[..., 0], cols[..., 1:], dots)


class Picked(NamedTuple):
    """What `LossContext.picked` reads: [B, T], [B, T, C] and [B, T, D]."""

    gold: Tensor
    sparse: Tensor | None
    dense: Tensor | None
