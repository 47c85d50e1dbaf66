"""Distil a student from resolved teacher(s): word-level KD, transfer losses, seq-level KD."""

from __future__ import annotations

from distillab.compose import Run
from distillab.pipelines.fit import JobResult, fit_and_evaluate


def run(r: Run) -> JobResult:
    r.start("distilling")
    module = r.distillation_module()
    return fit_and_evaluate(module, r.distill_data, r.stage(r.distill_data))
