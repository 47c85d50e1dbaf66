"""The whole training config (`RunConfig`) and `validate`: resolved, typed and checked (keys,
ranges, combinations), then the files it names and the output root, before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from omegaconf import DictConfig, OmegaConf
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator

from distillab.config import constants as c
from distillab.config.distill import Distill, check_teacher_outputs
from distillab.config.groups import (
    Data,
    Decoding,
    Model,
    Module,
    Optimizer,
    Paths,
    Scheduler,
    Seed,
    Student,
    Task,
    Trainer,
    Weighting,
    endless,
)
from distillab.config.messages import raise_one_line
from distillab.config.targets import Node, Target, check_signature, resolve
from distillab.config.teacher import Compress, ExtraTeacher, Teacher
from distillab.errors import ConfigError


def metric(value: Any) -> Any:
    """A metric name (`val/ppl`), or a list of them for a multi-objective sweep."""
    names = value if isinstance(value, list) else [value]
    if value is not None and not (names and all(isinstance(n, str) and n for n in names)):
        raise ValueError(
            f"@={value!r} must be a metric name (e.g. val/ppl) or a list of names (multi-objective)"
        )
    return value


def job(path: str) -> str:
    if not callable(resolve(path, "@")):
        raise ValueError(f"@={path!r} is not a function of the config")
    return path


class RunConfig(Node):
    """`distillab-train`'s config, checked: the composition root builds every object from it."""

    model_config = ConfigDict(title="distillab")
    experiment_name: Any  # names the run directory: any scalar
    job: Annotated[str, AfterValidator(job)]
    seed: Seed
    threads: int | None = Field(None, ge=1)
    optimized_metric: Annotated[Any, AfterValidator(metric)] = None
    resume: str | None = None  # a run directory (distillab.validate checks it)
    decoding: Decoding
    data: Data
    model: Model
    task: Task
    optimizer: Optimizer
    scheduler: Scheduler
    module: Module
    student: Student
    paths: Paths
    logger: dict[str, Target | None] | None = None
    callbacks: dict[str, Target | None] | None = None
    distill: Distill
    weighting: Weighting | None = None
    trainer: Trainer
    teacher: Teacher
    extra_teachers: list[ExtraTeacher] | None = None
    compress: Compress | None = None

    @model_validator(mode="after")
    def _across(self) -> RunConfig:
        train, trainer = self.teacher.train, self.trainer
        if train is not None:
            key = "teacher.train.trainer"
            check_signature(
                train.trainer, resolve(trainer.target), (), Trainer.WIRED, key, trainer.target
            )
            budget = {
                **trainer.model_dump(exclude_unset=True),
                **train.trainer.model_dump(exclude_unset=True),
            }
            endless(key, budget.get("max_steps"), budget.get("max_epochs"))
        main = resolve(self.teacher.target, "teacher._target_")
        for i, extra in enumerate(self.extra_teachers or []):
            kind = (
                main
                if extra.target is None
                else resolve(extra.target, f"extra_teachers[{i}]._target_")
            )
            check_signature(extra, kind, at=f"extra_teachers[{i}]", owner=self.teacher.target)
        if self.compress is not None:
            self.compress.check_budget(trainer.max_steps)
        if self.job in c.DISTILL_JOBS:
            check_teacher_outputs(self)
        return self


def resolved(cfg: DictConfig) -> dict:
    """The config as plain containers, interpolations resolved; `???` and unresolvable values
    are config errors naming their key."""
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if not missing:
            return OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf's interpolation and resolver errors
        key = getattr(e, "full_key", None) or "config"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{key}: cannot resolve its value ({reason})") from None
    raise ConfigError(f"{missing[0]} is required (it is ???): set it, e.g. {missing[0]}=...")


def hook(node: Target | Any, key: str) -> Any:
    """A plug-in checks the files it names through a `check_config(node, key)` hook on its
    target (`HFTeacher`: a model directory; the datamodule: a tokenizer directory, returning
    its vocabulary size)."""
    check = getattr(resolve(node.target, f"{key}._target_"), "check_config", None)
    return check(node.model_dump(by_alias=True), key) if callable(check) else None


def check_files(run: RunConfig) -> int | None:
    """The files the config names; returns a pretrained tokenizer's vocabulary size."""
    distillation = run.job in c.DISTILL_JOBS
    if distillation or run.data.tokenizer_path == getattr(run.teacher, "path", None):
        hook(run.teacher, "teacher")  # before the data: name the teacher's key
    vocab = hook(run.data, "data")
    path, source = run.data.path, run.data.source.target if run.data.source else None
    if not path and source in c.SOURCES_NEEDING_PATH:
        raise ConfigError(
            "data.path is required with data=jsonl (a .jsonl file, one conversation a line)"
        )
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"data.path={path}: no such file")
    if not distillation:
        return vocab  # the teachers are not used
    ckpt = run.teacher.ckpt
    if ckpt is not None and ckpt != c.AUTO and not Path(ckpt).is_file():
        raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file (a path, or auto)")
    for i, extra in enumerate(run.extra_teachers or []):
        if extra.ckpt == c.AUTO:
            raise ConfigError(
                f"extra_teachers[{i}].ckpt=auto is not allowed: an extra teacher needs a checkpoint path"
            )
        if not Path(extra.ckpt).is_file():
            raise ConfigError(f"extra_teachers[{i}].ckpt={extra.ckpt}: no such checkpoint file")
    return vocab


def check_output_root(root: str) -> None:
    """Created if absent (the run directory lies under it) and written to (a temp file)."""
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise ConfigError(
            f"paths.output_root={root}: cannot create or write there ({e.strerror or e})"
        ) from None


def check_writable_dir(key: str, path: str) -> None:
    """A directory that jobs create later: its closest existing ancestor must be writable."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key}={path}: cannot create it ({p} is {'not writable' if p.is_dir() else 'not a directory'})"
        )


def validate(cfg: DictConfig) -> RunConfig:
    """The typed, checked config; raises `ConfigError` (one line: key, value, what is allowed)
    for the first error. Only the output root is touched (created, a temp file written)."""
    try:
        run = RunConfig.model_validate(resolved(cfg))
    except ValidationError as e:
        raise_one_line(e, RunConfig)
    vocab = check_files(run)
    if vocab is not None and run.job in c.DISTILL_JOBS:
        check_teacher_outputs(run, vocab)
    check_output_root(run.paths.output_root)
    check_writable_dir("paths.cache_dir", run.paths.cache_dir)
    if run.data.model_extra.get("cache_dir") not in (None, run.paths.cache_dir):
        check_writable_dir("data.cache_dir", run.data.model_extra["cache_dir"])
    return run
