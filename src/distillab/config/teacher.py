"""The teacher (its target; `ckpt: auto` needs a `teacher.train` block, checked like a job's
own config), the extra teachers, and the compression group."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from distillab.config import constants as c
from distillab.config.groups import (
    Budget,
    Count,
    Decoding,
    Fraction,
    Model,
    Module,
    Optimizer,
    Scheduler,
    Seed,
    Target,
)
from distillab.config.messages import message
from distillab.config.targets import Node, parameters, resolve


class TeacherData(Node):
    model_config = ConfigDict(title="the teacher's data budget")
    max_train_examples: Count | None = None


class TeacherTrain(Node):
    """The teacher's own training config (the registry reads every key)."""

    model_config = ConfigDict(title="the teacher's training config (teacher.train)")
    seed: Seed
    model: Model
    module: Module
    optimizer: Optimizer
    scheduler: Scheduler
    decoding: Decoding
    trainer: Budget  # its budget over the job's; keys: the job trainer's (RunConfig checks)
    data: TeacherData


class Teacher(Target):
    EXTRA = ("train",)
    weight: float = Field(None, ge=0.0)
    ckpt: str = None
    train: Any = None  # a TeacherTrain: checked where the teacher is a checkpoint's

    @model_validator(mode="after")
    def _train(self) -> Teacher:
        if "ckpt" not in parameters(resolve(self.target))[0]:
            self.train = None  # only checkpoint teachers are trained (presets may set it)
        elif self.train is not None:
            try:
                self.train = TeacherTrain.model_validate(self.train)
            except ValidationError as e:
                raise ValueError(message(e, TeacherTrain, ("@", "train"))) from None
        if self.ckpt == c.AUTO and self.train is None:
            raise ValueError("@.train is missing: @.ckpt=auto trains it from there")
        return self


class ExtraTeacher(BaseModel):
    """{ckpt: PATH, weight: W}: a teacher of the main teacher's kind unless `_target_` says."""

    model_config = ConfigDict(extra="allow", strict=True, title="an extra teacher")
    target: str | None = Field(None, alias="_target_")
    ckpt: str
    weight: float = Field(None, ge=0.0)


class Schedule(Node):
    model_config = ConfigDict(title="the pruning schedule")
    start_step: int = Field(ge=0)
    end_step: int = Field(ge=0)
    frequency: Count

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        if self.end_step < self.start_step:
            raise ValueError(
                f"@.end_step={self.end_step} is out of range; allowed: [{self.start_step}, inf]"
            )
        return self


class Pruner(Target):
    scope: Any = None  # layer | global (the chosen method's: Compress checks)


class Compress(Node):
    model_config = ConfigDict(title="compression (compress=none|prune|quantize|hybrid)")
    prune: bool
    quantize: bool
    export: bool
    sparsity: Fraction
    mode: str
    pruners: dict[str, Pruner]
    schedule: Schedule | None
    finetune_steps: int = Field(ge=0)
    eval_inputs: Count

    @model_validator(mode="after")
    def _method(self) -> Compress:
        if self.mode not in self.pruners:
            raise ValueError(
                f"@.mode={self.mode!r} is not allowed; choose one of {list(self.pruners)}"
            )
        pruner = self.pruners[self.mode]
        if pruner.scope not in (None, "layer", "global"):
            raise ValueError(
                f"@.pruners.{self.mode}.scope={pruner.scope!r} is not allowed; "
                "choose one of ['layer', 'global']"
            )
        gradual = self.schedule is not None or self.finetune_steps > 0
        if self.prune and gradual and not getattr(resolve(pruner.target), "gradual", False):
            raise ValueError(
                f"@.mode={self.mode} prunes in one step after training: "
                "set @.schedule=null and @.finetune_steps=0"
            )
        return self

    def check_budget(self, max_steps: Any) -> None:
        """A schedule that finishes within its phase (the fine-tuning steps, or training)."""
        if self.schedule is None:
            return
        fine = self.finetune_steps
        budget, where = (
            (fine, "compress.finetune_steps") if fine else (max_steps, "trainer.max_steps")
        )
        if type(budget) is int and budget > 0 and self.schedule.end_step > budget:
            raise ValueError(
                f"compress.schedule.end_step={self.schedule.end_step} is past {where}={budget}: "
                "the schedule would not finish"
            )
