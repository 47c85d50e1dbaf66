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
    try:
        root = Path(__file__).resolve().parents[3]
        out["git_commit"] = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = ""
    return out


def save_run_info(run_dir: Path, cfg: DictConfig, data_info: dict) -> None:
    """Resolved config, package versions and the data fingerprint, beside the results."""
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_json(run_dir / "versions.json", versions())
    atomic_write_json(run_dir / "data.json", data_info)
