"""Shared fixtures: a tiny composed config that trains in seconds on 2 CPU cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from distillab.compose import Run
from distillab.compose import compose as compose_run
from distillab.compose.modules import distillation_module
from distillab.data.batch import Batch
from distillab.train import CONF_DIR

TINY = [
    "data.max_examples=400",
    "data.vocab_size=300",
    "data.batch_size=16",
    "data.eval_batch_size=32",
    "data.max_source_len=24",
    "data.max_target_len=12",
    "model.emb_dim=16",
    "model.hidden_size=32",
    "model.enc_layers=1",
    "model.dec_layers=1",
    "trainer.max_steps=6",
    "module.decode_examples=8",
    "scheduler.warmup_steps=2",
    "threads=1",
]

# the registry teacher of distillation tests: its own (tiny) training config
TINY_TEACHER = [
    "teacher.train.model.emb_dim=24",
    "teacher.train.model.hidden_size=48",
    "teacher.train.model.enc_layers=1",
    "teacher.train.model.dec_layers=1",
    "teacher.train.trainer.max_steps=6",
    "teacher.train.module.decode_examples=8",
    "teacher.train.scheduler.warmup_steps=2",
]


def compose_cfg(overrides: list[str], tmp_path: Path) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.output_root = str(tmp_path / "outputs")
        cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


def started(cfg: DictConfig) -> Run:
    """The composed run of `cfg`, started as a job starts it (run directory, seed, threads)."""
    r = compose_run(cfg)
    r.start("testing")
    return r


def student_of(r: Run, teachers: list, cfg: DictConfig | None = None):
    """A distillation module of `cfg` (default: the run's) taught by `teachers`."""
    return distillation_module(cfg or r.cfg, r.data, r.heads, teachers)


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def synthetic_conversations(n: int = 40, turns: int = 6) -> list[dict]:
    words = (
        "hello how are you fine thanks what about the weather today sunny rain cold warm".split()
    )
    out = []
    for i in range(n):
        conv = [
            " ".join(words[(i + j + k) % len(words)] for k in range(3 + j % 4))
            for j in range(turns)
        ]
        out.append({"id": f"c{i}", "turns": conv, "topic": f"t{i % 3}", "rating": (i % 5) / 4})
    return out


def make_batch(rows: int = 2, src_len: int = 4, tgt_len: int = 3, **fields) -> Batch:
    """A `Batch` of random tokens (ids 3..19, no padding) with `fields` replaced, for tests
    of code that reads only some of its fields."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, 20, (rows, src_len), generator=g)
    tgt = torch.randint(3, 20, (rows, tgt_len), generator=g)
    defaults = dict(
        index=torch.arange(rows),
        src=src,
        src_mask=src != 0,
        tgt_in=tgt,
        tgt_out=tgt,
        tgt_mask=tgt != 0,
        topic=torch.zeros(rows, dtype=torch.long),
        rating=torch.zeros(rows),
        rating_mask=torch.zeros(rows, dtype=torch.bool),
        n_tokens=rows * tgt_len,
    )
    return Batch(**{**defaults, **fields})
