"""Distil a student from resolved teacher(s): word-level KD, transfer losses, seq-level KD."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from distillab.jobs.common import JobResult, fit_and_evaluate, module_kwargs, save_run, start_run
from distillab.jobs.seqkd import use_teacher_decodes
from distillab.jobs.teacher import resolve_teachers
from distillab.modules.distill import DistillationModule
from distillab.teachers import CachedTeacher, Teacher
from distillab.teachers.cache import TeacherCache


def cached(cfg: DictConfig, dm, teacher: Teacher) -> CachedTeacher:
    """The teacher served from its cached top-k and tail draws for `dm`'s training rows (built
    once), softened at the job's (starting) temperature, where the cached target is unbiased."""
    d = cfg.distill
    spec = {
        "k": int(d.topk),
        "tail_samples": int(d.tail_samples),
        "temperature": float(d.objective.temperature),
    }
    return CachedTeacher(
        teacher, TeacherCache.build_or_load(teacher, dm, spec, cfg.paths.cache_dir)
    )


def build_student(cfg: DictConfig, dm, teachers: list[Teacher]) -> DistillationModule:
    module = DistillationModule(
        **module_kwargs(cfg, dm),
        objective=OmegaConf.to_container(cfg.distill.objective, resolve=True),
        teachers=teachers,
        init_from_teacher=bool(cfg.student.init_from_teacher),
        onpolicy=OmegaConf.to_container(cfg.distill.onpolicy, resolve=True),
    )
    module.tokenizer = dm.tokenizer
    return module


def run(cfg: DictConfig) -> JobResult:
    run_dir, dm = start_run(cfg, "distilling")
    teachers = resolve_teachers(cfg, dm)
    if cfg.distill.seqkd.enabled:
        use_teacher_decodes(cfg, dm, teachers[0])
    if cfg.distill.teacher_outputs == "cached":
        teachers[0] = cached(cfg, dm, teachers[0])
    # the same student init whether or not a teacher was trained or a cache built first
    # (each pass over a DataLoader draws from the global RNG)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_student(cfg, dm, teachers)
    save_run(cfg, dm, run_dir)
    return fit_and_evaluate(cfg, dm, module, run_dir)
