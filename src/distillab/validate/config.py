"""The whole training config (`validate`): resolved, top-level keys, the job, then each group,
the combinations, the files and the output root, in that order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from distillab.errors import ConfigError
from distillab.validate.compress import check_compress
from distillab.validate.distill import check_distill, check_teacher_outputs
from distillab.validate.fields import check_schema
from distillab.validate.groups import (
    check_data,
    check_decoding,
    check_entries,
    check_model,
    check_module,
    check_optimizer,
    check_scheduler,
    check_trainer,
    check_weighting,
)
from distillab.validate.paths import (
    check_files,
    check_output_root,
    check_run_dir,
    check_writable_dir,
    teacher_files,
)
from distillab.validate.schemas import DISTILL_JOBS, PATHS, STUDENT, TASK, TOP_LEVEL
from distillab.validate.targets import check_target, import_target
from distillab.validate.teacher import check_teacher


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


def check_top_level(cfg: dict) -> list[str]:
    """Top-level keys: the schema's, plus any other node with a `_target_` (e.g. `decoding`),
    checked against its target. Returns those extra target nodes."""
    extra = [k for k, v in cfg.items() if k not in TOP_LEVEL and isinstance(v, dict)]
    extra = [k for k in extra if "_target_" in cfg[k]]
    check_schema("", {k: v for k, v in cfg.items() if k not in extra}, TOP_LEVEL, "distillab")
    return extra


def check_optimized_metric(value: Any) -> None:
    """A metric name (`val/ppl`, `compression/size_bytes_compressed`), or a list of them for a
    multi-objective sweep."""
    names = value if isinstance(value, list) else [value]
    if value is None:
        return
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"optimized_metric={value!r} must be a metric name (e.g. val/ppl) or a list of "
            "names (multi-objective)"
        )


def check_job(job: str) -> None:
    obj = import_target("job", job)
    if not callable(obj):
        raise ConfigError(f"job={job!r} is not a function of the config")


GROUP_CHECKS: dict[str, Callable[[Any], None]] = {
    "data": check_data,
    "model": lambda node: check_model("model", node),
    "task": lambda node: check_schema("task", node, TASK, "the task (task=single|multi)"),
    "optimizer": lambda node: check_optimizer("optimizer", node),
    "scheduler": lambda node: check_scheduler("scheduler", node),
    "module": lambda node: check_module("module", node),
    "student": lambda node: check_schema("student", node, STUDENT, "the student"),
    "paths": lambda node: check_schema("paths", node, PATHS, "paths"),
    "logger": lambda node: check_entries("logger", node),
    "callbacks": lambda node: check_entries("callbacks", node),
    "distill": check_distill,
    "weighting": check_weighting,
}


def validate(cfg: DictConfig) -> None:
    """Raise `ConfigError` (one line: key, value, what is allowed) for the first config error;
    run before any work. Only the output root is touched (created, a temp file written)."""
    c = resolved(cfg)
    for key in check_top_level(c):
        check_target(key, c[key])
    check_job(c["job"])
    check_optimized_metric(c.get("optimized_metric"))
    check_decoding("decoding", c["decoding"])
    teacher_path = c.get("teacher", {}).get("path")
    if teacher_path is not None and c["data"].get("tokenizer_path") == teacher_path:
        teacher_files(c["teacher"], "teacher")  # before the data: name the teacher's key
    for group, check in GROUP_CHECKS.items():
        if group in c:
            check(c[group])
    trainer_target = check_trainer(c["trainer"])
    check_teacher(c, trainer_target)
    if "compress" in c:
        check_compress(c["compress"], c["trainer"])
    distillation = c["job"] in DISTILL_JOBS
    if distillation:
        check_teacher_outputs(c)
    check_files(c, distillation)
    check_output_root(c["paths"]["output_root"])
    check_run_dir(c)
    check_writable_dir("paths.cache_dir", c["paths"]["cache_dir"])
    if c["data"].get("cache_dir") not in (None, c["paths"]["cache_dir"]):
        check_writable_dir("data.cache_dir", c["data"]["cache_dir"])
