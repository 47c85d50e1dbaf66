"""The whole training config (`RunConfig`) and `validate`: resolved, typed and checked (keys,
ranges, combinations), then the files it names and the output root, before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from omegaconf import DictConfig, OmegaConf
from pydantic import AfterValidator, Field, ValidationError, model_validator

from distillab.config import constants as c
from distillab.config import groups as g
from distillab.config.distill import Distill, check_teacher_outputs
from distillab.config.messages import raise_one_line
from distillab.config.targets import Node, Target, check_signature, resolve
from distillab.config.teacher import Compress, ExtraTeacher, Teacher
from distillab.errors import ConfigError


def metric(value: Any) -> Any:
    """A metric name (`val/ppl`), or a list of them for a multi-objective sweep."""
    names = value if isinstance(value, list) else [value]
    if value is not None and not (names and all(isinstance(n, str) and n for n in names)):
        raise ValueError(f"@={value!r} must be a metric name (e.g. val/ppl) or a list of names")
    return value


def job(path: str) -> str:
    if not callable(resolve(path, "@")):
        raise ValueError(f"@={path!r} is not a function of the config")
    return path


class RunConfig(Node, title="distillab"):
    """`distillab-train`'s config, checked: the composition root builds every object from it."""

    experiment_name: Any  # names the run directory: any scalar
    job: Annotated[str, AfterValidator(job)]
    seed: g.Seed
    threads: int | None = Field(None, ge=1)
    optimized_metric: Annotated[Any, AfterValidator(metric)] = None
    resume: str | None = None  # a run directory (distillab.validate checks it)
    rerun_failed: bool = False  # a sweep run again: re-run its failed jobs (guides/sweeps.md)
    decoding: g.Decoding
    data: g.Data
    model: g.Model
    task: g.Task
    optimizer: g.Optimizer
    scheduler: g.Scheduler
    module: g.Module
    student: g.Student
    paths: g.Paths
    logger: dict[str, Target | None] | None = None
    callbacks: dict[str, Target | None] | None = None
    distill: Distill
    weighting: g.Weighting | None = None
    trainer: g.Trainer
    teacher: Teacher
    extra_teachers: list[ExtraTeacher] | None = None
    compress: Compress | None = None

    @model_validator(mode="after")
    def _across(self) -> RunConfig:
        trainer, teacher = self.trainer, self.teacher
        if teacher.train is not None:  # the teacher's budget, over the job's trainer
            own, key = teacher.train.trainer, "teacher.train.trainer"
            check_signature(own, resolve(trainer.target), trainer.WIRED, key, trainer.target)
            g.endless(
                key, trainer.model_dump(exclude_unset=True) | own.model_dump(exclude_unset=True)
            )
        for i, extra in enumerate(self.extra_teachers or []):
            key = f"extra_teachers[{i}]"
            kind = resolve(extra.target or teacher.target, f"{key}._target_")
            check_signature(extra, kind, {}, key, teacher.target)
        if self.compress is not None:
            self.compress.check_budget(trainer.max_steps)
        if self.job in c.DISTILL_JOBS:
            check_teacher_outputs(self)
        return self


def resolved(cfg: DictConfig) -> dict:
    """Plain containers, interpolations resolved; `???` and unresolvable values name their key."""
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if not missing:
            return OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf's interpolation and resolver errors
        key = getattr(e, "full_key", None) or "config"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{key}: cannot resolve its value ({reason})") from None
    raise ConfigError(f"{missing[0]} is required (it is ???): set it, e.g. {missing[0]}=...")


def hook(node: Any, key: str) -> Any:
    """A plug-in checks the files it names with a `check_config(node, key)` hook on its target
    (`HFTeacher`: a model directory; the datamodule: a tokenizer's, returning its size)."""
    check = getattr(resolve(node.target, f"{key}._target_"), "check_config", None)
    return check(node.model_dump(by_alias=True), key) if callable(check) else None


def check_files(run: RunConfig) -> int | None:
    """The files the config names; returns a pretrained tokenizer's vocabulary size."""
    teaching = run.job in c.DISTILL_JOBS
    if teaching or run.data.tokenizer_path == (run.teacher.model_extra or {}).get("path"):
        hook(run.teacher, "teacher")  # before the data: name the teacher's key
    hook(run.model, "model")  # a model started from a directory (model.path)
    vocab, path = hook(run.data, "data"), run.data.path
    if not path and run.data.source and run.data.source.target in c.SOURCES_NEEDING_PATH:
        raise ConfigError("data.path is required with data=jsonl (a .jsonl file, one per line)")
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"data.path={path}: no such file")
    ckpts = {"teacher.ckpt": run.teacher.ckpt} if teaching else {}
    ckpts |= {f"extra_teachers[{i}].ckpt": x.ckpt for i, x in enumerate(run.extra_teachers or [])}
    for key, ckpt in ckpts.items() if teaching else ():
        if ckpt == c.AUTO and key != "teacher.ckpt":
            raise ConfigError(
                f"{key}=auto is not allowed: an extra teacher needs a checkpoint path"
            )
        if ckpt not in (None, c.AUTO) and not Path(ckpt).is_file():
            raise ConfigError(f"{key}={ckpt}: no such checkpoint file")
    return vocab


def check_output_root(root: str) -> None:
    """Created if absent (the run directory lies under it) and written to (a temp file)."""
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
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
        why = "not writable" if p.is_dir() else "not a directory"
        raise ConfigError(f"{key}={path}: cannot create it ({p} is {why})")


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
    for key, path in (
        ("paths", run.paths.cache_dir),
        ("data", run.data.model_extra.get("cache_dir")),
    ):
        if path is not None and (key == "paths" or path != run.paths.cache_dir):
            check_writable_dir(f"{key}.cache_dir", path)
    return run
