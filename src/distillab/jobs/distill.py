"""Distil a student from resolved teacher(s): word-level KD, transfer losses, seq-level KD."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from distillab.jobs.common import fit_and_evaluate, module_kwargs, save_run, start_run
from distillab.jobs.seqkd import use_teacher_decodes
from distillab.jobs.teacher import resolve_teachers
from distillab.modules.distill import DistillationModule


def build_student(cfg: DictConfig, dm, teachers: list[dict]) -> DistillationModule:
    module = DistillationModule(
        **module_kwargs(cfg, dm),
        objective=OmegaConf.to_container(cfg.distill.objective, resolve=True),
        teachers=teachers,
        init_from_teacher=bool(cfg.student.init_from_teacher),
    )
    module.tokenizer = dm.tokenizer
    return module


def run(cfg: DictConfig) -> dict[str, float]:
    run_dir, dm = start_run(cfg)
    teachers = resolve_teachers(cfg, dm)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # same init whether or not a
    # teacher had to be trained first
    module = build_student(cfg, dm, teachers)
    if cfg.distill.seqkd.enabled:
        use_teacher_decodes(cfg, dm, module.teachers[0], teachers[0]["ckpt"])
    save_run(cfg, dm, run_dir)
    return fit_and_evaluate(cfg, dm, module, run_dir)
