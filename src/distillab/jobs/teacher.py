"""Teacher resolution: an explicit checkpoint, or the registry under `paths.output_root`.

The registry entry of a teacher is a normal run directory at
`<output_root>/teachers/<key>/`, where `key` hashes everything that shapes the teacher (its
model, optimisation, trainer, task, seed) and the data fingerprint. A file lock makes the
concurrent jobs of a sweep wait for one training instead of each training the same teacher.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf, open_dict

from distillab.data import DialogueDataModule
from distillab.errors import ConfigError
from distillab.utils.io import atomic_write_json, fingerprint


def teacher_config(cfg: DictConfig) -> DictConfig:
    """The config that trains the teacher: the job's config with `cfg.teacher` merged over it."""
    t = OmegaConf.to_container(cfg.teacher, resolve=True)  # plain values: no self-references
    tcfg = OmegaConf.merge(
        cfg,
        {
            "model": t["model"],
            "module": t.get("module") or {},
            "trainer": t.get("trainer") or {},
            "data": t.get("data") or {},
            "seed": t["seed"],
            "experiment_name": "teacher",
            "job": "distillab.jobs.train.run",
        },
    )
    return tcfg


def registry_key(tcfg: DictConfig, dm: DialogueDataModule) -> str:
    parts = {
        k: OmegaConf.to_container(tcfg[k], resolve=True)
        for k in ("model", "module", "trainer", "task")
    }
    parts["seed"] = tcfg.seed
    parts["max_train_examples"] = tcfg.data.get("max_train_examples")
    return fingerprint(parts, dm.fingerprint, dm.vocab_hash)


def resolve_teacher(cfg: DictConfig, dm: DialogueDataModule) -> str:
    """Path of the teacher checkpoint; trains and registers it first when `ckpt=auto`."""
    ckpt = str(cfg.teacher.ckpt)
    if ckpt != "auto":
        if not Path(ckpt).is_file():
            raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file")
        return ckpt
    tcfg = teacher_config(cfg)
    root = Path(cfg.paths.output_root) / "teachers"
    root.mkdir(parents=True, exist_ok=True)
    key = registry_key(tcfg, dm)
    entry = root / key
    with FileLock(str(entry) + ".lock"):
        done = entry / "registry.json"
        if not done.exists():
            shutil.rmtree(entry, ignore_errors=True)  # an earlier attempt that did not finish
            with open_dict(tcfg):
                tcfg.paths.output_dir = str(entry)
            print(f"teacher: none registered under {entry}; training it now")
            from distillab.jobs.train import run as train_run

            metrics = train_run(tcfg)
            best = json.loads((entry / "checkpoint.json").read_text())
            atomic_write_json(
                done,
                {"key": key, "checkpoint": best["best"] or best["last"], "metrics": metrics},
            )
        info = json.loads(done.read_text())
    print(f"teacher: {info['checkpoint']}")
    return info["checkpoint"]


def resolve_teachers(cfg: DictConfig, dm: DialogueDataModule) -> list[dict]:
    """The main teacher plus `extra_teachers`, as [{ckpt, weight}, ...]."""
    teachers = [{"ckpt": resolve_teacher(cfg, dm), "weight": float(cfg.teacher.weight)}]
    for i, extra in enumerate(cfg.get("extra_teachers") or []):
        path = str(extra.get("ckpt", ""))
        if not Path(path).is_file():
            raise ConfigError(f"extra_teachers[{i}].ckpt={path}: no such checkpoint file")
        teachers.append({"ckpt": path, "weight": float(extra.get("weight", 1.0))})
    return teachers
