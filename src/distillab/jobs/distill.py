"""Distil a student from resolved teacher(s): word-level KD, transfer losses, seq-level KD."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from distillab.errors import ConfigError, check_choice, check_range
from distillab.jobs.common import fit_and_evaluate, module_kwargs, save_run, start_run
from distillab.jobs.seqkd import use_teacher_decodes
from distillab.jobs.teacher import resolve_teachers
from distillab.modules.distill import DistillationModule
from distillab.modules.teacher_cache import TeacherCache


def build_student(cfg: DictConfig, dm, teachers: list[dict]) -> DistillationModule:
    module = DistillationModule(
        **module_kwargs(cfg, dm),
        objective=OmegaConf.to_container(cfg.distill.objective, resolve=True),
        teachers=teachers,
        init_from_teacher=bool(cfg.student.init_from_teacher),
    )
    module.tokenizer = dm.tokenizer
    return module


def check_teacher_outputs(cfg: DictConfig) -> None:
    """The cache holds one teacher's logits for un-augmented inputs and gold targets."""
    d = cfg.distill
    check_choice("distill.teacher_outputs", d.teacher_outputs, ("online", "cached"))
    if d.teacher_outputs != "cached":
        return
    check_range("distill.topk", d.topk, 1, None)
    check_range("distill.tail_samples", d.tail_samples, 0, None)
    clashes = []
    if cfg.data.token_dropout > 0 or cfg.data.context_dropout > 0:
        clashes.append(
            f"data augmentation (data.token_dropout={cfg.data.token_dropout}, "
            f"data.context_dropout={cfg.data.context_dropout}) changes the teacher's inputs"
        )
    if d.seqkd.enabled:
        clashes.append("distill.seqkd.enabled=true changes the targets")
    if d.objective.beta > 0 or d.objective.gamma > 0:
        clashes.append("hidden/attention transfer (beta, gamma > 0) needs the teacher's states")
    if cfg.get("extra_teachers"):
        clashes.append("extra_teachers: the cache holds one teacher")
    if clashes:
        raise ConfigError(
            "distill.teacher_outputs=cached excludes: "
            + "; ".join(clashes)
            + ". Use distill.teacher_outputs=online, or turn those off."
        )


def teacher_cache(cfg: DictConfig, dm, teacher, ckpt: str, cache_dir: str) -> TeacherCache:
    """The teacher's cached top-k and tail draws for `dm`'s training rows (built once), softened
    at the job's (starting) temperature, where the cached KD target is unbiased."""
    d = cfg.distill
    k, tail_samples, temp = int(d.topk), int(d.tail_samples), float(d.objective.temperature)
    return TeacherCache.build_or_load(teacher, ckpt, dm, k, tail_samples, temp, cache_dir)


class WithCachedTeacher:
    """A training collate that adds the cached teacher outputs of the batch's rows (checked
    against its target lengths by `TeacherCache.batch`) as the `topk_*` entries
    `DistillationModule` reads; collate itself only pads."""

    def __init__(self, collate, cache: TeacherCache) -> None:
        self.collate, self.cache = collate, cache

    def __call__(self, items: list[dict]) -> dict:
        batch = self.collate(items)
        tgt_mask = batch["tgt_mask"]
        values, ids = self.cache.batch(batch["index"], tgt_mask.shape[1], tgt_mask)
        batch.update(topk_values=values, topk_ids=ids)
        batch.update(topk_tail_samples=self.cache.tail_samples)
        batch.update(topk_temperature=self.cache.temperature)
        return batch


def serve_cached_teacher(dm, cache: TeacherCache) -> None:
    """Make `dm`'s training loaders carry `cache`'s outputs (`del dm.train_dataloader` undoes)."""
    make_loader = type(dm).train_dataloader.__get__(dm)

    def train_dataloader():
        loader = make_loader()
        loader.collate_fn = WithCachedTeacher(loader.collate_fn, cache)
        return loader

    dm.train_dataloader = train_dataloader


def run(cfg: DictConfig) -> dict[str, float]:
    check_teacher_outputs(cfg)
    run_dir, dm = start_run(cfg)
    teachers = resolve_teachers(cfg, dm)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # same init whether or not a
    # teacher had to be trained first
    module = build_student(cfg, dm, teachers)
    if cfg.distill.seqkd.enabled:
        use_teacher_decodes(cfg, dm, module.teachers[0], teachers[0]["ckpt"])
    if cfg.distill.teacher_outputs == "cached":
        cache = teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)
        serve_cached_teacher(dm, cache)
    save_run(cfg, dm, run_dir)
    return fit_and_evaluate(cfg, dm, module, run_dir)
