"""The teacher (its target; `ckpt: auto` needs a `teacher.train` block, checked like a job's
own config), the extra teachers, and the compression group."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from distillab.config import constants as c
from distillab.config import groups as g
from distillab.config.messages import message
from distillab.config.targets import Node, Target, parameters, resolve


class TeacherData(Node, title="the teacher's data budget"):
    max_train_examples: g.Count | None = None


class TeacherTrain(Node, title="the teacher's training config (teacher.train)"):
    seed: g.Seed
    model: g.Model
    module: g.Module
    optimizer: g.Optimizer
    scheduler: g.Scheduler
    decoding: g.Decoding
    trainer: g.Budget  # over the job's trainer, whose target takes its keys (RunConfig)
    data: TeacherData


class Teacher(Target):
    EXTRA = ("train",)
    weight: float = Field(None, ge=0.0)
    ckpt: str = None
    train: Any = None  # a TeacherTrain where the teacher is a checkpoint's (the registry's)

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


class ExtraTeacher(Node, extra="allow", title="an extra teacher"):
    """{ckpt: PATH, weight: W}: of the main teacher's kind unless its `_target_` says."""

    target: str | None = Field(None, alias="_target_")
    ckpt: str
    weight: float = Field(None, ge=0.0)


class Schedule(Node, title="the pruning schedule"):
    start_step: int = Field(ge=0)
    end_step: int = Field(ge=0)
    frequency: g.Count

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        if self.end_step < self.start_step:
            raise ValueError(
                f"@.end_step={self.end_step} is out of range; allowed: [{self.start_step}, inf]"
            )
        return self


class Compress(Node, title="compression (compress=none|prune|quantize|hybrid)"):
    prune: bool
    quantize: bool
    export: bool
    sparsity: g.Fraction
    mode: str  # a key of `pruners`: plug-ins by `_target_`
    pruners: dict[str, Target]
    schedule: Schedule | None
    finetune_steps: int = Field(ge=0)
    eval_inputs: g.Count

    @model_validator(mode="after")
    def _method(self) -> Compress:
        if self.mode not in self.pruners:
            raise ValueError(
                f"@.mode={self.mode!r} is not allowed; choose one of {list(self.pruners)}"
            )
        # its keys: its signature's (`scope`: a Literal); what it supports: its attributes,
        # `gradual` (masks in place, on a schedule) or `shrinks` (a smaller model, in stages
        # after training, each fine-tuned)
        method = resolve(self.pruners[self.mode].target)
        staged = getattr(method, "gradual", False) or getattr(method, "shrinks", False)
        if self.prune and (self.schedule is not None or self.finetune_steps > 0) and not staged:
            raise ValueError(
                f"@.mode={self.mode} prunes in one step after training (its method is neither "
                "gradual nor shrinks): set @.schedule=null and @.finetune_steps=0"
            )
        return self

    def check_budget(self, max_steps: Any) -> None:
        """A schedule that finishes within its phase (the fine-tuning steps, or training)."""
        end, fine = (self.schedule.end_step if self.schedule else 0), self.finetune_steps
        budget, where = (
            (fine, "compress.finetune_steps") if fine else (max_steps, "trainer.max_steps")
        )
        if type(budget) is int and 0 < budget < end:
            raise ValueError(
                f"compress.schedule.end_step={end} is past {where}={budget}: "
                "the schedule would not finish"
            )
