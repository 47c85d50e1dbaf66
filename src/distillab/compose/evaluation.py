"""The objects of `distillab-eval` (conf/eval.yaml): the checkpoint's module, the training
run's data rebuilt from its saved config, its teacher for attention maps, the compression."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from distillab.checkpoint import read_checkpoint
from distillab.compose.compression import build_compression
from distillab.compose.run import Run
from distillab.compose.rundir import prepare, save_run
from distillab.config.evaluation import job_config, run_config
from distillab.data.datamodule import DialogueDataModule
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.pipelines.compress import Compression
from distillab.teachers import Teacher


class EvalRun:
    """What `distillab-eval` works with, each built once."""

    def __init__(self, cfg: DictConfig) -> None:
        self.ckpt = str(cfg.ckpt)
        self.job = job_config(cfg)
        self.run_dir = Path(cfg.paths.output_dir)
        self.plots = bool(cfg.plots)
        self.num_dialogues = int(cfg.num_dialogues or 4)
        self.training_run = Run(OmegaConf.load(run_config(self.ckpt)))  # its teacher

    def start(self, what: str) -> None:
        prepare(self.job, what)

    @cached_property
    def data(self) -> DialogueDataModule:
        dm = self.training_run.data  # the training run's data settings, read once
        save_run(self.job, dm, self.run_dir)
        return dm

    @cached_property
    def module(self) -> Seq2SeqModule:
        """A plain `Seq2SeqModule` (gold objective: no teacher needed) holding the
        checkpoint's network, masks of a pruned checkpoint folded."""
        return Seq2SeqModule.from_checkpoint(self.ckpt, self.data.tokenizer)

    @cached_property
    def teacher(self) -> Teacher | None:
        """The run's teacher, rebuilt from its config (registry, path, HF), for a distilled
        checkpoint (its module recorded the teachers' ids); None otherwise."""
        hp = read_checkpoint(self.ckpt)["hyper_parameters"]
        return self.training_run.teacher if "teacher_ids" in hp else None

    @cached_property
    def compression(self) -> Compression | None:
        return build_compression(self.job)


def compose_eval(cfg: DictConfig) -> EvalRun:
    """The run of a checked `distillab-eval` config."""
    return EvalRun(cfg)
