"""Writing a teacher-output cache (`teachers.cache`): one teacher pass over the training rows,
each batch's top-k + tail draws (`Codec.sample`) encoded by the cache's codec straight into
memory-mapped per-token arrays; a codec with cache-wide arrays (`Codec.prepare`, the residual
codec's prior) takes its own pass first."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from distillab.data.datamodule import DialogueDataModule
from distillab.teachers.codecs import Codec, Layout
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json

if TYPE_CHECKING:
    from distillab.teachers.base import Teacher


def offsets_hash(offsets: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(offsets, dtype=np.int64).tobytes()).hexdigest()[:16]


def save_lengths(out: Path, lengths: np.ndarray) -> None:
    """The row lengths, sparse: `rows.npy` (int32, the rows that have target tokens) and
    `lengths.npy` (uint16, theirs). A dense int64 offset per row of the split would cost more
    than the tokens when the training subset is a small part of the split."""
    rows = np.flatnonzero(lengths)
    np.save(out / "rows.npy", rows.astype(np.int32))
    np.save(out / "lengths.npy", lengths[rows].astype(np.uint16))


def load_offsets(path: Path, n_rows: int) -> np.ndarray:
    """int64 [n_rows + 1]: row r's tokens are `offsets[r]:offsets[r+1]` (from `save_lengths`)."""
    rows, lengths = np.load(path / "rows.npy"), np.load(path / "lengths.npy")
    dense = np.zeros(n_rows, dtype=np.int64)
    if len(rows) != len(lengths) or (len(rows) and (rows.min() < 0 or rows.max() >= n_rows)):
        dense = np.full(n_rows, -1, dtype=np.int64)  # refused by the caller's hash check
    else:
        dense[rows] = lengths
    return np.concatenate([[0], np.cumsum(dense)]).astype(np.int64)


@torch.no_grad()
def build_cache(
    teacher: Teacher,
    dm: DialogueDataModule,
    codec: Codec,
    layout: Layout,
    info: dict,
    out: Path,
) -> None:
    """Write the cache of `layout` (k, tail_samples, vocab) by `codec` into `out`, a fresh
    directory; `info` (format, codec, softening_temperature, seed, ...) goes to info.json with
    the shape facts and the build time."""
    start = time.perf_counter()
    softening = info["softening_temperature"]
    train = dm.datasets["train"]
    n_rows = len(train.split.examples)
    lengths = np.zeros(n_rows, dtype=np.int64)
    for row in train.rows:  # target length incl. EOS, exactly as collate builds it
        conv, t = train.split.examples[row]
        lengths[row] = len(train.target(int(conv), int(t))) + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    log.info(f"teacher outputs: one teacher pass over {len(train)} training inputs -> {out}")
    total = int(offsets[-1])
    arrays = {
        name: np.lib.format.open_memmap(out / f"{name}.npy", "w+", dtype, (total, *shape))
        for name, (dtype, shape) in codec.arrays(layout).items()
    }
    gen = torch.Generator().manual_seed(info["seed"])

    def soft(batch) -> torch.Tensor:  # one online teacher's full logits, softened
        (logits,) = teacher.outputs(batch).logits
        return torch.log_softmax(logits.float() / softening, dim=-1)

    def passes():  # a teacher pass over the target tokens: [tokens, vocab] log-probs
        for batch in dm.plain_loader("train"):
            yield soft(batch)[batch.tgt_mask]

    prior = codec.prepare(passes, layout)
    for name in codec.global_names:
        np.save(out / f"global_{name}.npy", np.asarray(prior[name], dtype=np.float32))
    prior_t = {name: torch.from_numpy(np.asarray(a)) for name, a in prior.items()}
    for batch in dm.plain_loader("train"):
        rows = batch.index.numpy().astype(np.int64)
        pos = np.arange(batch.tgt_mask.shape[1])
        valid = pos[None, :] < lengths[rows][:, None]
        dest = (offsets[rows][:, None] + pos[None, :])[valid]
        # only the target tokens are sampled and encoded (not the batch's padding)
        values, ids = codec.sample(soft(batch)[torch.from_numpy(valid)], layout, gen, prior_t)
        encoded = codec.encode(values, ids, layout, gen)
        for name, arr in arrays.items():
            arr[dest] = encoded[name]
    for arr in arrays.values():
        arr.flush()
    del arrays
    save_lengths(out, lengths)
    atomic_write_json(
        out / "info.json",
        {
            **info,
            "rows": n_rows,
            "rows_filled": len(train),
            "tokens": total,
            "offsets_hash": offsets_hash(offsets),
            "build_s": round(time.perf_counter() - start, 3),
        },
    )
