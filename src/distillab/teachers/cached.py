"""A teacher served from its cached outputs (`teachers.cache`): no teacher pass per step.

The cache holds, for every training target token, the teacher's top-k plus tail draws, built
once per (teacher, data, training rows, k, draws, softening temperature, codec) and shared by a
sweep.
Rows are looked up by the batch's `index`; a cache whose row lengths disagree with the batch is
refused.
"""

from __future__ import annotations

import torch

from distillab.data.batch import Batch
from distillab.models import Seq2Seq
from distillab.teachers.base import Teacher
from distillab.teachers.cache import TeacherCache
from distillab.teachers.outputs import CachedOutput


class CachedTeacher(Teacher):
    def __init__(self, base: Teacher, cache: TeacherCache) -> None:
        self.base, self.cache, self.weight = base, cache, base.weight

    @property
    def identity(self) -> str:
        return self.base.identity

    @property
    def checkpoint(self) -> str | None:
        return self.base.checkpoint

    @property
    def model(self) -> Seq2Seq | None:
        """The wrapped teacher's network, where it has one (student.init_from_teacher)."""
        return self.base.model

    @property
    def source(self) -> str:
        return self.base.source

    @property
    def vocab_hash(self) -> str:
        return self.base.vocab_hash

    def outputs(self, batch: Batch) -> CachedOutput:
        mask = batch.tgt_mask
        values, ids = self.cache.batch(batch.index, mask.shape[1], mask)
        topic_logits = rating = None
        model = self.model
        if model is not None and model.has_heads:
            # the task heads are not cached: an encoder pass (no decoder) serves them
            with torch.no_grad():
                topic_logits, rating = model.heads(*batch.head_input, batch.conversation)
        return CachedOutput(
            topic_logits=topic_logits,
            rating=rating,
            values=values,
            ids=ids,
            tail_samples=self.cache.tail_samples,
            softening_temperature=self.cache.softening_temperature,
            estimator=self.cache.estimator,
            vectors=self.cache.dense_vectors,
        )
