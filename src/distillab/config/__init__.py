"""distillab's typed configuration: one pydantic schema per config group (`conf/<group>/`),
a root `RunConfig`, and `validate(cfg)`, which turns a composed Hydra config into a checked
`RunConfig` before any work (one-line `ConfigError`s naming key, value and what is allowed).
Imports no pipeline, module or model: plug-ins are resolved from their `_target_`."""

from distillab.config.distill import check_teacher_outputs
from distillab.config.evaluation import EvalConfig, validate_eval
from distillab.config.run import RunConfig, validate

__all__ = ["EvalConfig", "RunConfig", "check_teacher_outputs", "validate", "validate_eval"]
