"""The model card: what an exported model is and how to rebuild it, written into the export
directory (``model_card.json``) so that whoever serves it can tell which model answered.

It gathers what the run directory already records (``config.yaml``: the resolved config,
``versions.json``: package versions and the git commit, ``data.json``: the data fingerprint,
``metrics.json``, ``compression.json``) and what only the checkpoint knows (the teachers'
identities, the data and vocabulary fingerprints the model was trained on).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from distillab.utils.io import atomic_write_json
from distillab.utils.run_info import git_commit

CARD = "model_card.json"
FORMAT = "distillab-model-card-v1"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def model_card(run_dir: Path, hp: dict[str, Any], export_dir: Path) -> dict[str, Any]:
    """The card of the model exported to ``export_dir`` from the run in ``run_dir``; ``hp``:
    its checkpoint's hyperparameters."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    versions = read_json(run_dir / "versions.json") or {}
    exported = read_json(Path(export_dir) / "config.json") or {}
    teachers = hp.get("teacher_ids") or []
    return {
        "format": FORMAT,
        "created": int(time.time()),
        "run_dir": str(run_dir.resolve()),
        "model": {
            "vocab_size": exported.get("vocab_size"),
            "max_len": exported.get("max_len"),
            "context_turns": exported.get("context_turns"),
            "max_source_len": exported.get("max_source_len"),
        },
        "teachers": [str(t) for t in teachers],
        "data": {
            "fingerprint": hp.get("data_fingerprint", ""),
            "vocab_hash": hp.get("vocab_hash", ""),
            **(
                {"run": read_json(run_dir / "data.json")}
                if (run_dir / "data.json").is_file()
                else {}
            ),
        },
        "git_commit": versions.get("git_commit") or git_commit(),
        "versions": versions,
        "config": yaml.safe_load(config.read_text()) if config.is_file() else None,
        "metrics": read_json(run_dir / "metrics.json"),
        "compression": read_json(run_dir / "compression.json"),
    }


def write_model_card(export_dir: Path, run_dir: Path, hp: dict[str, Any]) -> Path:
    """Write ``model_card.json`` into ``export_dir``."""
    path = Path(export_dir) / CARD
    atomic_write_json(path, model_card(run_dir, hp, export_dir))
    return path
