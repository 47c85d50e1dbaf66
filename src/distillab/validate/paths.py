"""Files and directories, checked last: data and teacher files, the output root (created and
written to), the run directory (fresh or resumable), directories that jobs create later."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from distillab.errors import ConfigError
from distillab.validate.schemas import AUTO, SOURCES_NEEDING_PATH
from distillab.validate.targets import import_target


def check_files(cfg: dict, distillation: bool) -> None:
    path = cfg["data"].get("path")
    source = (cfg["data"].get("source") or {}).get("_target_")
    if not path and source in SOURCES_NEEDING_PATH:
        raise ConfigError(
            "data.path is required with data=jsonl (a .jsonl file, one conversation a line)"
        )
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"data.path={path}: no such file")
    if not distillation:
        return  # the teachers are not used
    teacher_files(cfg["teacher"], "teacher")
    ckpt = cfg["teacher"].get("ckpt")
    if ckpt is not None and ckpt != AUTO and not Path(ckpt).is_file():
        raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file (a path, or auto)")
    for i, extra in enumerate(cfg.get("extra_teachers") or []):
        key = f"extra_teachers[{i}].ckpt"
        if extra["ckpt"] == AUTO:
            raise ConfigError(
                f"{key}=auto is not allowed: an extra teacher needs a checkpoint path"
            )
        if not Path(extra["ckpt"]).is_file():
            raise ConfigError(f"{key}={extra['ckpt']}: no such checkpoint file")


def teacher_files(node: dict, key: str) -> None:
    """A teacher plug-in checks its own files (e.g. `HFTeacher`: a local model directory with
    a usable tokenizer) through a `check_config(node, key)` hook on its class."""
    hook = getattr(import_target(f"{key}._target_", node["_target_"]), "check_config", None)
    if callable(hook):
        hook(node, key)


def check_output_root(root: str) -> None:
    """Created if absent (the run directory lies under it) and written to (a temp file)."""
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise ConfigError(
            f"paths.output_root={root}: cannot create or write there ({e.strerror or e})"
        ) from None


def check_run_dir(cfg: dict) -> None:
    """`resume=RUN_DIR` must name a resumable run; without it, the run directory must not hold
    another run already (nothing of an existing run is overwritten), except this job's own
    interrupted run, which it continues (a requeued job). DDP ranks > 0 share rank 0's run
    directory."""
    from distillab.jobs.resume import check_resumable, check_run_dir_reuse

    if cfg.get("resume"):
        check_resumable(cfg["resume"])
        return
    check_run_dir_reuse(cfg)


def check_writable_dir(key: str, path: str) -> None:
    """A directory that jobs create later: nothing is created here, but the closest existing
    ancestor must be a writable directory (and `path` itself not a file)."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        why = "not a directory" if not p.is_dir() else "not writable"
        raise ConfigError(f"{key}={path}: cannot create it ({p} is {why})")
