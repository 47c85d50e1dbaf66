"""Sequence-level KD (Kim & Rush 2016): the teacher decodes the training inputs once.

Decodes are cached in the artefact directory `<cache_dir>/seqkd/<key>/` (`tokens.npy`,
`offsets.npy`, `info.json`, `artefact.json`; see `utils.artefacts.build_once`), keyed by the
teacher's identity (its checkpoint's sha256), the data fingerprint, the training rows and the
whole resolved decoding config (`distill.seqkd.decoding`, a `decoding` group node), so every
student of a sweep reuses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distillab.data.datamodule import DialogueDataModule
from distillab.decoding import Strategy
from distillab.errors import DataError
from distillab.teachers import Teacher
from distillab.utils.artefacts import build_once
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, fingerprint


@torch.no_grad()
def decode_training_set(teacher: Teacher, dm: DialogueDataModule, strategy: Strategy) -> dict:
    """Teacher decodes (without EOS) for every training row in use, as flat tokens + offsets."""
    n_rows = len(dm.splits["train"].examples)
    decodes: dict[int, list[int]] = {}
    for batch in dm.plain_loader("train"):
        hyps = teacher.generate(batch.src, batch.src_mask, strategy)
        for row, hyp in zip(batch.index.tolist(), hyps.tolist(), strict=True):
            hyp = hyp[: hyp.index(dm.eos_id)] if dm.eos_id in hyp else hyp
            decodes[row] = [t for t in hyp if t != dm.pad_id]
    lens = np.array([len(decodes.get(r, ())) for r in range(n_rows)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    tokens = np.fromiter(
        (t for r in range(n_rows) for t in decodes.get(r, ())),
        dtype=np.int32,
        count=int(lens.sum()),
    )
    return {"tokens": tokens, "offsets": offsets}


def use_teacher_decodes(
    dm: DialogueDataModule,
    teacher: Teacher,
    strategy: Strategy,
    decoding: dict,
    gold_fraction: float,
    cache_dir: str | Path,
) -> Path:
    """Make `dm`'s training set serve the teacher's decodes (mixed with gold), cached on disk
    and keyed by `decoding` (the strategy's resolved config); returns the cache directory."""
    train = dm.datasets["train"]
    spec = {
        "format": "seqkd-decodes-v2",
        "teacher": teacher.identity,
        "data": dm.fingerprint,
        "train_rows": fingerprint(train.rows.tolist()),
        "decoding": decoding,
        "max_target_len": int(dm.max_target_len),
    }
    path = Path(cache_dir) / "seqkd" / fingerprint(spec)

    def build(out: Path) -> None:
        log.info(f"seqkd: teacher decodes {len(train)} training inputs -> {path}")
        arrays = decode_training_set(teacher, dm, strategy)
        np.save(out / "tokens.npy", arrays["tokens"])
        np.save(out / "offsets.npy", arrays["offsets"])
        info = {
            "teacher": teacher.identity,
            "rows": len(arrays["offsets"]) - 1,
            "rows_filled": len(train),
        }
        atomic_write_json(out / "info.json", {**info, "tokens": len(arrays["tokens"])})

    build_once(path, spec, build)
    tokens, offsets = np.load(path / "tokens.npy"), np.load(path / "offsets.npy")
    n_rows = len(dm.splits["train"].examples)
    if len(offsets) != n_rows + 1 or int(offsets[-1]) != len(tokens):
        raise DataError(
            f"{path}: seq-KD decodes for {len(offsets) - 1} rows ({len(tokens)} tokens); the "
            f"training split has {n_rows} rows. Refusing to read a stale cache; delete it."
        )
    train.use_targets(tokens, offsets, gold_fraction)
    return path
