"""The teacher (its target, `ckpt: auto` needing a `teacher.train` block, that block checked
like a job's own config) and the extra teachers."""

from __future__ import annotations

from typing import Any

from distillab.errors import ConfigError
from distillab.validate.fields import check_fields, check_schema
from distillab.validate.groups import (
    check_budget,
    check_decoding,
    check_model,
    check_module,
    check_optimizer,
    check_scheduler,
    check_trainer_values,
)
from distillab.validate.schemas import (
    AUTO,
    EXTRA_TEACHER_FIELDS,
    TEACHER_DATA,
    TEACHER_RANGES,
    TEACHER_TRAIN,
    WIRED,
)
from distillab.validate.targets import check_target, check_target_keys, import_target, parameters


def check_teacher(cfg: dict, trainer_target: Any) -> None:
    teacher = cfg["teacher"]
    target = check_target("teacher", teacher, extra=("train",))
    check_fields("teacher", teacher, TEACHER_RANGES)
    train = teacher.get("train")
    if "ckpt" not in parameters(target)[0]:
        train = None  # only checkpoint teachers are trained by the registry (presets may set it)
    if train is None:
        if teacher.get("ckpt") == AUTO:
            raise ConfigError("teacher.train is missing: teacher.ckpt=auto trains it from there")
    else:
        check_teacher_train(train, cfg["trainer"], trainer_target)
    for i, extra in enumerate(cfg.get("extra_teachers") or []):
        key = f"extra_teachers[{i}]"
        if not isinstance(extra, dict):
            raise ConfigError(f"{key}={extra!r} must be a mapping {{ckpt: PATH, weight: W}}")
        name = extra.get("_target_", teacher["_target_"])  # default: the main teacher's kind
        extra_target = import_target(f"{key}._target_", name) if "_target_" in extra else target
        check_target_keys(key, extra, extra_target, name)
        for k, f in EXTRA_TEACHER_FIELDS.items():
            if k in extra:
                f.check(f"{key}.{k}", extra[k])
            elif f.required:
                raise ConfigError(f"{key}.{k} is missing: an extra teacher needs a checkpoint path")


def check_teacher_train(train: Any, job_trainer: dict, trainer_target: Any) -> None:
    key = "teacher.train"
    check_schema(key, train, TEACHER_TRAIN, "the teacher's training config (teacher.train)")
    check_model(f"{key}.model", train["model"])
    check_module(f"{key}.module", train["module"])
    check_optimizer(f"{key}.optimizer", train["optimizer"])
    check_scheduler(f"{key}.scheduler", train["scheduler"])
    check_decoding(f"{key}.decoding", train["decoding"])
    budget = train["trainer"]
    if not isinstance(budget, dict):
        raise ConfigError(f"{key}.trainer={budget!r} must be a mapping (trainer settings)")
    check_target_keys(
        f"{key}.trainer", budget, trainer_target, job_trainer["_target_"], wired=WIRED["trainer"]
    )
    check_trainer_values(f"{key}.trainer", budget)
    check_budget(f"{key}.trainer", {**job_trainer, **budget})  # its budget over the job's
    check_schema(f"{key}.data", train["data"], TEACHER_DATA, "the teacher's data budget")
