"""Teacher resolution: build the configured teacher(s), training a registry teacher if needed.

`cfg.teacher` is a teacher config chosen by `_target_` (conf/teacher/). Its `train` block is the
teacher's own complete training config (model, module, optimizer, scheduler, trainer budget,
data budget, seed): nothing of the student's settings reaches it except the shared data
pipeline (splits, tokenizer), the task heads and the trainer's hardware settings.

`ckpt: auto` looks the teacher up in the registry, `<output_root>/teachers/<key>/`, where
`key` hashes that block, the task, the teacher's resolved trainer config (less what only
changes logging) and the data fingerprint; absent, it is trained there first
(`utils.artefacts.build_once`: the concurrent jobs of a sweep wait on a file lock for one
training instead of each training the teacher), on the job's loaded data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from distillab.compose.modules import gold_module
from distillab.compose.rundir import prepare, save_run
from distillab.compose.trainer import build_stage
from distillab.data.datamodule import DialogueDataModule
from distillab.decoding import build_strategy
from distillab.errors import ConfigError
from distillab.pipelines.fit import LAST, fit_and_evaluate
from distillab.pipelines.seqkd import use_teacher_decodes
from distillab.teachers import Teacher
from distillab.teachers.base import check_vocab
from distillab.teachers.cache import TeacherCache
from distillab.utils.artefacts import build_once, wait_built
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, fingerprint
from distillab.utils.ranks import is_rank_zero
from distillab.utils.status import alive, read_status

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
    job.update(experiment_name="teacher", job="distillab.jobs.train.run", resume=None)
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


def train_registry_teacher(
    tcfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool], out: Path
) -> dict[str, Any]:
    """Train the teacher `tcfg` describes into `out` on `dm`'s splits with its own data budget;
    a training interrupted earlier (kept in the staging dir) resumes from its checkpoint."""
    tcfg.paths.output_dir = str(out)
    data = dm.with_train_budget(tcfg.data.max_train_examples)
    resumable = (out / LAST).is_file()
    prepare(tcfg, "training")
    module = gold_module(tcfg, data, heads)
    save_run(tcfg, data, out)
    stage = build_stage(tcfg, str(out / LAST) if resumable else None, None)
    result = fit_and_evaluate(module, data, stage)
    ckpt = Path(result.checkpoint).relative_to(out)
    return {"checkpoint": str(ckpt), "metrics": result.metrics}


def registry_entry(cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool]) -> dict:
    """The registry teacher: `{"checkpoint": path, "metrics": its val/test metrics on this
    data's splits, "key": ...}`; trained and registered first if absent."""
    tcfg = teacher_job_config(cfg)
    root = Path(cfg.paths.output_root) / "teachers"
    spec = registry_spec(tcfg, dm)
    entry = root / fingerprint(spec)

    def train_teacher(out: Path) -> None:
        doing = f"resuming it from {out / LAST}" if (out / LAST).is_file() else "training it now"
        log.info(f"teacher: none registered under {entry}; {doing}")
        info = train_registry_teacher(tcfg, dm, heads, out)
        atomic_write_json(out / "registry.json", {"key": entry.name, **info})

    if is_rank_zero():  # trained in <key>.partial, renamed into place when done
        build_once(entry, spec, train_teacher, staging=root / f"{entry.name}.partial")
    else:  # DDP tasks started together (srun): rank 0 trains and registers it
        if not (entry / "registry.json").is_file():
            log.info(f"teacher: waiting for rank 0 to register {entry}")
        wait_built(entry, spec, rank_zero_gone(Path(cfg.paths.output_dir)))
    info = json.loads((entry / "registry.json").read_text())
    return {**info, "checkpoint": str(entry / info["checkpoint"])}


def rank_zero_gone(run_dir: Path, grace_s: float = 120.0):
    """For a rank > 0 waiting on rank 0: why rank 0 no longer runs this job (its status.json
    not `running` with a fresh heartbeat, after `grace_s` for it to start), else None."""
    start = time.time()

    def gone() -> str | None:
        record = read_status(run_dir) or {}
        if record.get("state") == "running" and alive(run_dir, record):
            return None
        if time.time() - start < grace_s:
            return None
        return f"rank 0 is not running this job ({run_dir}: {record.get('state', 'no status')})"

    return gone


def build_teacher(spec: dict, dm: DialogueDataModule) -> Teacher:
    """Instantiate one teacher config (`_target_`, its `ckpt` resolved already)."""
    teacher = instantiate(spec)
    log.info(f"teacher: {teacher.source}")
    # refused here, before any student trains (the quickstart trains its scratch student
    # before it distils); the distillation module checks again for teachers built elsewhere
    check_vocab(teacher, dm.vocab_hash, dm.fingerprint, f"teacher ({teacher.identity[:12]})")
    return teacher


def teacher_decodes(cfg: DictConfig, dm: DialogueDataModule, teacher: Teacher) -> Path:
    """Sequence-level KD: `dm`'s training set serves `teacher`'s decodes under
    `distill.seqkd` (decoding strategy, gold fraction), cached under `paths.cache_dir`."""
    seq = cfg.distill.seqkd
    decoding = OmegaConf.to_container(seq.decoding, resolve=True)
    strategy = build_strategy(decoding, "distill.seqkd.decoding")
    return use_teacher_decodes(
        dm, teacher, strategy, decoding, float(seq.gold_fraction), cfg.paths.cache_dir
    )


def teacher_cache(cfg: DictConfig, dm: DialogueDataModule, teacher: Teacher) -> TeacherCache:
    """`teacher`'s cached top-k and tail draws for `dm`'s training rows (`distill.topk`,
    `distill.tail_samples`) stored by `distill.codec`, softened at the objective's (starting) temperature, where the
    cached target is unbiased; built once under `paths.cache_dir`."""
    d = cfg.distill
    codec = instantiate(d.codec) if d.get("codec") is not None else None
    if codec is not None and not codec.reweights and d.objective.temperature_end is not None:
        raise ConfigError(
            f"distill.objective.temperature_end={d.objective.temperature_end}: the "
            f"{type(codec).__name__} codec's tail draws hold no probabilities to reweight; "
            "use distill/codec=compact for a temperature schedule"
        )
    return TeacherCache.build_or_load(
        teacher,
        dm,
        k=int(d.topk),
        tail_samples=int(d.tail_samples),
        softening_temperature=float(d.objective.temperature),
        cache_dir=cfg.paths.cache_dir,
        codec=codec,
    )


def teacher_specs(cfg: DictConfig) -> list[dict]:
    """The main teacher's config and `extra_teachers` (each a teacher config; `_target_`
    defaults to the main teacher's), without their `train` blocks."""
    main = OmegaConf.to_container(cfg.teacher, resolve=True)
    main.pop("train", None)  # how the registry trains it, not a constructor argument
    extras = [
        {"_target_": main["_target_"], **OmegaConf.to_container(extra, resolve=True)}
        for extra in cfg.get("extra_teachers") or []
    ]
    return [main, *extras]
