"""A student learning from frozen teacher(s).

Teachers (`distillab.teachers`) are kept in a plain list, not as submodules: they are never
trained, never in the optimiser and never written into the student's checkpoint (its
hyperparameters record their identities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from distillab.data.batch import Batch, TrainingBatch
from distillab.errors import ConfigError
from distillab.losses.context import LossContext
from distillab.losses.objective import Objective
from distillab.models import Seq2SeqOutput
from distillab.modules.onpolicy import OnPolicy
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.teachers import Teacher, check_vocab, combine_outputs


class DistillationModule(Seq2SeqModule):
    """`objective` is the distillation objective, built by the composition root from
    `distill.objective` (`losses.objective.distill_objective`): its learned parts (projections,
    uncertainty/DWA weights) are this module's submodules, trained and checkpointed
    (`objective.*`); the hyperparameters record what it was built from (`objective_config`).
    `onpolicy` is `distill.onpolicy`."""

    # live objects: `teacher_ids` records who the teachers were, `objective_config` what the
    # objective was built from
    not_hyperparameters = (*Seq2SeqModule.not_hyperparameters, "teachers")

    def __init__(
        self,
        objective: Objective,
        teachers: Sequence[Teacher],
        init_from_teacher: bool = False,
        layer_map: list[int] | None = None,
        onpolicy: Mapping[str, Any] | None = None,
        **kwargs,
    ) -> None:
        if not teachers:
            raise ConfigError("distillation needs at least one teacher (teacher.ckpt)")
        super().__init__(objective=objective, **kwargs)
        hp = self.hparams
        hp.objective_config = objective.config  # for the record; never rebuilt from it
        hp.teacher_ids = [t.identity for t in teachers]
        for i, t in enumerate(teachers):
            check_vocab(t, hp.vocab_hash, hp.data_fingerprint, f"teacher {i} ({t.identity[:12]})")
        self.teachers = list(teachers)
        self.teacher_weights = [t.weight for t in teachers]
        # `distill.onpolicy` (enabled, lmbda, sampling, seed); None or disabled: gold batches
        self.onpolicy = OnPolicy(**onpolicy) if onpolicy and onpolicy.get("enabled") else None
        self.copied: list[str] = []
        if init_from_teacher:
            first = teachers[0].model
            if first is None:
                raise ConfigError("student.init_from_teacher=true needs a teacher with weights")
            self.copied = init_student_from_teacher(self.model, first, layer_map)

    def _move_teachers(self) -> None:
        for t in self.teachers:
            t.to(self.device)

    def on_fit_start(self) -> None:
        self._move_teachers()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The lmbda coin's generator state: a resumed run sends the same batches on-policy
        as an uninterrupted one (the global RNGs are restored by Lightning's loop state)."""
        Seq2SeqModule.on_save_checkpoint(self, checkpoint)  # the NaN guard's read
        if self.onpolicy is not None:
            checkpoint["onpolicy_coin"] = self.onpolicy.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.onpolicy is not None and "onpolicy_coin" in checkpoint:
            self.onpolicy.generator.set_state(checkpoint["onpolicy_coin"])

    def training_batch(self, batch: Batch) -> TrainingBatch:
        if self.onpolicy is None:
            return TrainingBatch(batch)
        step = self.onpolicy(self, batch)
        if self.writes_logs():
            self.log("train/on_policy", float(not step.gold), batch_size=batch.size)
        return step

    def loss_context(
        self, out: Seq2SeqOutput, batch: Batch, progress: float, gold: bool = True
    ) -> LossContext:
        outputs = [t.outputs(batch) for t in self.teachers]
        return LossContext(
            student=out,
            batch=batch,
            pad_id=self.hparams.pad_id,
            teacher=combine_outputs(outputs, self.teacher_weights),
            temperature=self.objective.temperature(progress),
            gold=gold,
        )


def init_student_from_teacher(
    student: torch.nn.Module, teacher: torch.nn.Module, layer_map: list[int] | None = None
) -> list[str]:
    """The student family's own copy from the teacher (`init_from`: matching tensors for the
    GRU, chosen layers for a transformer); returns what was set."""
    return student.init_from(teacher, layer_map)
