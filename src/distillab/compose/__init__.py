"""The composition root: the only place that turns a checked config into objects.

`compose(cfg)` -> `Run` (data, teachers, modules, trainers, run directory; each built once);
`compose_eval(cfg)` -> `EvalRun` for `distillab-eval`. Jobs receive these, pipelines receive
their objects."""

from distillab.compose.evaluation import EvalRun, compose_eval
from distillab.compose.run import Run, compose

__all__ = ["EvalRun", "Run", "compose", "compose_eval"]
