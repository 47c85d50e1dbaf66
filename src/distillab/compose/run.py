"""The composition root: one checked config in, the run's objects out, each built once.

`compose(cfg)` returns a `Run`. Its objects are built on first use and kept: the datamodule
(read and tokenised once), the task heads, the teachers (the registry looked up, and its
teacher trained, once), the students' data and teachers (seq-KD decodes, the teacher-output
cache), and for each training stage its trainer. A student is built (seeded) right before it
trains, so the scratch and the distilled student of the quickstart start from the same
initialisation and see the same batches whatever was built before them.

Jobs (`distillab.jobs`) take a `Run` and hand its objects to the pipelines
(`distillab.pipelines`), which read no configuration.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from distillab.compose.compression import build_compression
from distillab.compose.heads import task_heads
from distillab.compose.modules import distillation_module, gold_module
from distillab.compose.rundir import prepare, save_run, seed
from distillab.compose.teachers import (
    AUTO,
    build_teacher,
    registry_entry,
    teacher_cache,
    teacher_decodes,
    teacher_specs,
)
from distillab.compose.trainer import build_stage, build_trainer
from distillab.data.datamodule import DialogueDataModule
from distillab.models.build import reads_turns
from distillab.modules.distill import DistillationModule
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.pipelines.fit import LAST, Stage, evaluate
from distillab.teachers import CachedTeacher, Teacher


class Run:
    """The objects of one `distillab-train` invocation (see the module docstring)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.paths.output_dir)

    def start(self, what: str) -> None:
        """Announce what the job does, create the run directory, seed, set threads."""
        prepare(self.cfg, what)

    # ---- data and teachers ------------------------------------------------------------------
    @cached_property
    def data(self) -> DialogueDataModule:
        # batches carry the whole conversation only when the task heads read it, the sources'
        # turns only when the student's attention does
        dm = instantiate(
            self.cfg.data,
            conversation_bag=bool(self.cfg.task.get("conversation_bag")),
            turns=reads_turns(OmegaConf.to_container(self.cfg.model, resolve=True)),
        )
        dm.load()  # data errors surface here, before any training
        return dm

    @cached_property
    def heads(self) -> tuple[int, bool]:
        """(topics of the topic head (0: none), rating head?) for the task and the data."""
        return task_heads(self.cfg.task, self.data, self.cfg.data.get("path"))

    @cached_property
    def registry(self) -> dict:
        """The registry teacher's entry (`ckpt: auto`), trained into the registry if absent."""
        return registry_entry(self.cfg, self.data, self.heads)

    @cached_property
    def teachers(self) -> list[Teacher]:
        """The main teacher and `extra_teachers`, `ckpt: auto` resolved by the registry."""
        specs = teacher_specs(self.cfg)
        for spec in specs:
            if spec.get("ckpt") == AUTO:
                spec["ckpt"] = self.registry["checkpoint"]
        return [build_teacher(spec, self.data) for spec in specs]

    @property
    def teacher(self) -> Teacher:
        return self.teachers[0]

    def teacher_metrics(self) -> dict:
        """The main teacher on the students' validation and test sets: a registry teacher was
        evaluated on them when it was trained (its key includes this data's fingerprint); a
        distillab checkpoint is evaluated now; other teachers have no such metrics."""
        if self.cfg.teacher.get("ckpt") == AUTO:
            return dict(self.registry["metrics"])
        if self.teacher.checkpoint is None:
            return {}
        module = Seq2SeqModule.from_checkpoint(self.teacher.checkpoint, self.data.tokenizer)
        trainer = build_trainer(self.stage_config("teacher_eval", "teacher"), self.run_dir, [])
        return evaluate(trainer, module, self.data)

    @cached_property
    def distill_data(self) -> DialogueDataModule:
        """The distilled student's data: a training set of its own over the same loaded splits
        (a scratch student trained before it leaves nothing behind); with sequence-level KD
        it serves the teacher's decodes."""
        dm = self.data.with_train_budget(self.data.max_train_examples)
        if self.cfg.distill.seqkd.enabled:
            teacher_decodes(self.cfg, dm, self.teacher)
        return dm

    @cached_property
    def distill_teachers(self) -> list[Teacher]:
        """The teachers as the distilled student sees them: the main one served from its
        cached top-k and tail draws (`distill.teacher_outputs=cached`), built once for the
        students' training rows and softened at the objective's (starting) temperature."""
        teachers = list(self.teachers)
        if self.cfg.distill.teacher_outputs == "cached":
            cache = teacher_cache(self.cfg, self.distill_data, teachers[0])
            teachers[0] = CachedTeacher(teachers[0], cache)
        return teachers

    # ---- the models being trained -----------------------------------------------------------
    def gold_module(self) -> Seq2SeqModule:
        """A model trained on gold responses, seeded: the same initialisation every time."""
        heads = self.heads
        seed(self.cfg)
        return gold_module(self.cfg, self.data, heads)

    def distillation_module(self) -> DistillationModule:
        """The student of `distill_teachers`, seeded after its teachers and data are ready
        (each pass over a DataLoader draws from the global RNG)."""
        teachers, data, heads = self.distill_teachers, self.distill_data, self.heads
        seed(self.cfg)
        return distillation_module(self.cfg, data, heads, teachers)

    # ---- training stages --------------------------------------------------------------------
    def stage_config(self, subdir: str | None, name: str | None) -> DictConfig:
        """The config of a stage trained in `<run_dir>/<subdir>` (loggers and checkpoints
        follow `paths.output_dir`); the run's own config for `subdir=None`."""
        if subdir is None:
            return self.cfg
        sub = OmegaConf.merge(self.cfg, {"experiment_name": name or subdir})
        with open_dict(sub):
            sub.paths.output_dir = str(self.run_dir / subdir)
        return sub

    def stage(
        self, data: DialogueDataModule, subdir: str | None = None, name: str | None = None
    ) -> Stage:
        """A training stage: its run directory (saved config, versions, data, tokenizer), its
        trainer, the checkpoint it resumes from (`resume`) and the compression after it."""
        cfg = self.stage_config(subdir, name)
        run_dir = Path(cfg.paths.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run(cfg, data, run_dir)
        last = run_dir / LAST
        resume_from = str(last) if self.cfg.get("resume") and last.is_file() else None
        return build_stage(cfg, resume_from, build_compression(cfg))


def compose(cfg: DictConfig) -> Run:
    """The run of a checked `distillab-train` config."""
    return Run(cfg)
