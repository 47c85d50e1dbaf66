"""Train one model on gold responses: a teacher, or a student from scratch."""

from __future__ import annotations

from omegaconf import DictConfig

from distillab.jobs.common import JobResult, fit_and_evaluate, module_kwargs, save_run, start_run
from distillab.modules.seq2seq import Seq2SeqModule


def run(cfg: DictConfig) -> JobResult:
    run_dir, dm = start_run(cfg, "training")
    module = Seq2SeqModule(**module_kwargs(cfg, dm))
    module.tokenizer = dm.tokenizer
    save_run(cfg, dm, run_dir)
    return fit_and_evaluate(cfg, dm, module, run_dir)
