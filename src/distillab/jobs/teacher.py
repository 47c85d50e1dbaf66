"""Teacher resolution: build the configured teacher(s), training a registry teacher if needed.

`cfg.teacher` is a teacher config chosen by `_target_` (conf/teacher/). Its `train` block is the
teacher's own complete training config (model, module, optimizer, scheduler, trainer budget,
data budget, seed): nothing of the student's settings reaches it except the shared data
pipeline (splits, tokenizer), the task heads and the trainer's hardware settings.

`ckpt: auto` looks the teacher up in the registry, `<output_root>/teachers/<key>/`, where
`key` hashes that block, the task, the teacher's resolved trainer config (less what only
changes logging) and the data fingerprint; absent, it is trained there first (`utils.artefacts.build_once`: the concurrent
jobs of a sweep wait on a file lock for one training instead of each training the teacher).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from distillab.data import DialogueDataModule
from distillab.jobs.resume import LAST
from distillab.teachers import Teacher
from distillab.teachers.base import check_vocab
from distillab.utils.artefacts import build_once
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, fingerprint

AUTO = "auto"
# trainer settings that change what is printed or logged, never the trained weights
NOT_SHAPING = ("log_every_n_steps", "enable_model_summary", "enable_progress_bar")


def teacher_job_config(cfg: DictConfig) -> DictConfig:
    """The config that trains the registry teacher: the job's config, resolved, with the
    model-specific nodes replaced (not merged) by the teacher's `train` block."""
    t = OmegaConf.to_container(cfg.teacher.train, resolve=True)
    job = OmegaConf.to_container(cfg, resolve=True)
    for node in ("model", "module", "optimizer", "scheduler", "decoding", "seed"):
        job[node] = t[node]
    # the teacher's budget over the job's hardware, in one process: a distributed job resolves
    # its teacher before its processes start (see README, Reliability)
    for key in ("strategy", "num_nodes", "use_distributed_sampler"):
        job["trainer"].pop(key, None)
    job["trainer"]["devices"] = 1
    job["trainer"].update(t["trainer"])
    job["data"].update(t["data"])  # its data budget (max_train_examples)
    job.update(experiment_name="teacher", job="distillab.jobs.train.run")
    # where checkpoints and logs go follows the teacher's own output_dir (set when it trains),
    # not the job's: these nodes keep their ${paths.output_dir} interpolations
    for node in ("callbacks", "logger"):
        if node in cfg:
            job[node] = OmegaConf.to_container(cfg[node], resolve=False)
    job.pop("compress", None)  # the job's compression is the student's, not the teacher's
    job.pop("weighting", None)  # the teacher trains with its configured weights (Fixed)
    return OmegaConf.create(job)


def registry_spec(tcfg: DictConfig, dm: DialogueDataModule) -> dict[str, Any]:
    """Everything that shapes a registry teacher; its entry is keyed by a hash of this."""
    nodes = ("model", "module", "optimizer", "scheduler", "decoding")
    spec = {k: OmegaConf.to_container(tcfg[k]) for k in nodes}
    trainer = OmegaConf.to_container(tcfg.trainer)
    spec.update(
        format="teacher-registry-v2",
        trainer={k: v for k, v in trainer.items() if k not in NOT_SHAPING},
        task=OmegaConf.to_container(tcfg.task),
        seed=tcfg.seed,
        max_train_examples=tcfg.data.max_train_examples,
        data=dm.fingerprint,
        vocab=dm.vocab_hash,
    )
    return spec


def registry_entry(cfg: DictConfig, dm: DialogueDataModule) -> dict[str, Any]:
    """The registry teacher: `{"checkpoint": path, "metrics": its val/test metrics on this
    data's splits, "key": ...}`; trained and registered first if absent."""
    tcfg = teacher_job_config(cfg)
    root = Path(cfg.paths.output_root) / "teachers"
    spec = registry_spec(tcfg, dm)
    entry = root / fingerprint(spec)

    def train_teacher(out: Path) -> None:
        from distillab.jobs.train import run as train_run  # train imports what imports this

        tcfg.paths.output_dir = str(out)
        # a training interrupted earlier (kept in the staging dir) resumes from its checkpoint
        resumable = (out / LAST).is_file()
        tcfg.resume = str(out) if resumable else None
        doing = f"resuming it from {out / LAST}" if resumable else "training it now"
        log.info(f"teacher: none registered under {entry}; {doing}")
        result = train_run(tcfg)
        ckpt = Path(result.checkpoint).relative_to(out)
        info = {"key": entry.name, "checkpoint": str(ckpt), "metrics": result.metrics}
        atomic_write_json(out / "registry.json", info)

    # trained in <key>.partial, renamed into place when done
    build_once(entry, spec, train_teacher, staging=root / f"{entry.name}.partial")
    info = json.loads((entry / "registry.json").read_text())
    return {**info, "checkpoint": str(entry / info["checkpoint"])}


def build_teacher(spec: DictConfig | dict, cfg: DictConfig, dm: DialogueDataModule) -> Teacher:
    """Instantiate one teacher config (`_target_`), resolving `ckpt: auto` via the registry."""
    kwargs: dict[str, Any] = (
        OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
    )
    kwargs.pop("train", None)  # how the registry trains it, not a constructor argument
    if kwargs.get("ckpt") == AUTO:
        kwargs["ckpt"] = registry_entry(cfg, dm)["checkpoint"]
    teacher = instantiate(kwargs)
    log.info(f"teacher: {teacher.source}")
    # refused here, before any student trains (the quickstart trains its scratch student
    # before it distils); the distillation module checks again for teachers built elsewhere
    check_vocab(teacher, dm.vocab_hash, dm.fingerprint, f"teacher ({teacher.identity[:12]})")
    return teacher


def resolve_teachers(cfg: DictConfig, dm: DialogueDataModule) -> list[Teacher]:
    """The main teacher plus `extra_teachers` (each a teacher config; `_target_` defaults to
    the main teacher's)."""
    teachers = [build_teacher(cfg.teacher, cfg, dm)]
    for extra in cfg.get("extra_teachers") or []:
        spec = {"_target_": cfg.teacher._target_, **OmegaConf.to_container(extra, resolve=True)}
        teachers.append(build_teacher(spec, cfg, dm))
    return teachers
