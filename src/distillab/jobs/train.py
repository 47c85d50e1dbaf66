"""Train one model on gold responses: a teacher, or a student from scratch."""

from __future__ import annotations

from distillab.compose import Run
from distillab.pipelines.fit import JobResult, fit_and_evaluate


def run(r: Run) -> JobResult:
    r.start("training")
    module = r.gold_module()
    return fit_and_evaluate(module, r.data, r.stage(r.data))
