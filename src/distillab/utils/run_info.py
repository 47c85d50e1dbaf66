"""What every run saves next to its results so it can be reproduced."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from distillab.utils.io import atomic_write_json, atomic_write_text

PACKAGES = (
    "distillab",
    "torch",
    "pytorch-lightning",
    "hydra-core",
    "omegaconf",
    "transformers",
    "tokenizers",
    "torchmetrics",
    "chitchat-dataset",
)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["git_commit"] = git_commit()
    return out


def git_commit(root: Path | None = None) -> str:
    """The commit of the source checkout distillab runs from (`root`, by default the one
    holding this file); "" for an installed package, which has no checkout of its own (a venv
    inside some other repository must not report that one's commit)."""
    if root is None:
        root = Path(__file__).resolve().parents[3]  # <root>/src/distillab/utils/run_info.py
    root = Path(root).resolve()
    if not (root / "pyproject.toml").is_file():
        return ""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root:
        return ""
    return lines[1]


def save_run_info(run_dir: Path, cfg: DictConfig, data_info: dict) -> None:
    """Resolved config, package versions and the data fingerprint, beside the results."""
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_json(run_dir / "versions.json", versions())
    atomic_write_json(run_dir / "data.json", data_info)
