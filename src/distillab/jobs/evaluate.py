"""Evaluate a checkpoint after training; compress and export it with ``compress=...``."""

from __future__ import annotations

import inspect
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from distillab.compress import step as compress
from distillab.errors import ConfigError
from distillab.jobs import attention
from distillab.jobs.common import JobResult, evaluate, save_run, start_run
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.io import atomic_write_json


def run_config(ckpt: str | Path) -> Path:
    """The training run's resolved config: ``<run_dir>/config.yaml`` for a checkpoint in
    ``<run_dir>/checkpoints/`` (or ``<run_dir>/compressed/``)."""
    path = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"ckpt={ckpt}: no {path} (the training run's config); evaluate a checkpoint "
            "inside a distillab run directory"
        )
    return path


def job_config(cfg: DictConfig) -> DictConfig:
    """The training run's config with this invocation's compress, seed, threads and paths."""
    job = OmegaConf.load(run_config(cfg.ckpt))
    job = OmegaConf.merge(job, {"compress": cfg.compress, "experiment_name": cfg.experiment_name})
    with open_dict(job):
        job.seed = cfg.seed
        job.threads = cfg.threads if cfg.threads is not None else job.get("threads")
        job.paths = cfg.paths
    return job


def build_module(ckpt: str) -> Seq2SeqModule:
    """A plain :class:`Seq2SeqModule` (gold objective: no teacher needed) holding the
    checkpoint's network; masks of a pruned checkpoint folded."""
    model, state = compress.load_checkpoint_model(ckpt)
    accepted = inspect.signature(Seq2SeqModule).parameters
    hp = {k: v for k, v in dict(state["hyper_parameters"]).items() if k in accepted}
    module = Seq2SeqModule(**hp)
    module.model = model
    return module


def run(cfg: DictConfig) -> JobResult:
    job = job_config(cfg)
    run_dir, dm = start_run(job, "evaluating")
    module = build_module(str(cfg.ckpt))
    module.tokenizer = dm.tokenizer
    metrics = evaluate(compress.eval_trainer(job), module, dm)
    metrics["model/params"] = sum(p.numel() for p in module.model.parameters())
    save_run(job, dm, run_dir)
    if cfg.plots:
        spec = {"ckpt": cfg.ckpt, "num_dialogues": cfg.num_dialogues}
        plots = attention.run(OmegaConf.create({**spec, "plots_dir": str(run_dir / "attention")}))
        metrics.update(plots.metrics)
    atomic_write_json(run_dir / "metrics.json", metrics)
    if compress.enabled(job):
        compress.compress_checkpoint(job, dm, module, str(cfg.ckpt), metrics)
    return JobResult(metrics, run_dir, str(cfg.ckpt))
