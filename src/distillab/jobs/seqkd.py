"""Sequence-level KD (Kim & Rush 2016): the teacher decodes the training inputs once.

Decodes are cached at `<cache_dir>/seqkd/<key>.npz`, keyed by the teacher checkpoint's bytes,
the data fingerprint, the training rows and the whole resolved decoding config
(`distill.seqkd.decoding`, a `decoding` group node), so every student of a sweep reuses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from distillab.data import DialogueDataModule
from distillab.decoding import Strategy, build_strategy
from distillab.errors import check_range
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.io import file_sha256, fingerprint


@torch.no_grad()
def decode_training_set(teacher: Seq2SeqModule, dm: DialogueDataModule, strategy: Strategy) -> dict:
    """Teacher decodes (without EOS) for every training row in use, as flat tokens + offsets."""
    n_rows = len(dm.splits["train"].examples)
    decodes: dict[int, list[int]] = {}
    teacher.eval()
    for batch in dm.plain_loader("train"):
        hyps = teacher.generate(batch["src"], batch["src_mask"], strategy)
        for row, hyp in zip(batch["index"].tolist(), hyps.tolist(), strict=True):
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
    cfg: DictConfig, dm: DialogueDataModule, teacher: Seq2SeqModule, ckpt: str
) -> Path:
    """Make the training set serve the teacher's decodes (mixed with gold), cached on disk."""
    seq = cfg.distill.seqkd
    check_range("distill.seqkd.gold_fraction", seq.gold_fraction, 0.0, 1.0)
    decoding = OmegaConf.to_container(seq.decoding, resolve=True)
    strategy = build_strategy(decoding, "distill.seqkd.decoding")
    train = dm.datasets["train"]
    key = fingerprint(
        file_sha256(ckpt),
        dm.fingerprint,
        fingerprint(train.rows.tolist()),
        decoding,
        int(teacher.hparams.max_decode_len),
    )
    path = Path(cfg.paths.cache_dir) / "seqkd" / f"{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            print(f"seqkd: teacher decodes {len(train)} training inputs -> {path}")
            arrays = decode_training_set(teacher, dm, strategy)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(path)
    with np.load(path) as z:
        train.use_targets(z["tokens"], z["offsets"], float(seq.gold_fraction))
    return path
