"""Length-bucketed batches with padding masks: padding is cheap, packed sequences are slow on CPU."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length.

    Training: each epoch shuffles (or, with `weights`, draws with replacement, e.g. for a
    topic-balanced sampler), sorts pools of `batch_size * bucket_multiplier` examples by
    length, cuts them into batches and shuffles the batch order. Evaluation (`shuffle=False`):
    one fixed, sorted order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        bucket_multiplier: int = 50,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * max(1, bucket_multiplier)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (
                order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)
            )
            return
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # a fresh order each pass even if nobody calls set_epoch
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=gen).numpy()
        else:
            order = torch.randperm(n, generator=gen).numpy()
        batches = []
        for start in range(0, n, self.pool):
            pool = order[start : start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        for b in torch.randperm(len(batches), generator=gen).tolist():
            yield batches[b].tolist()


def collate(items: list[dict], pad_id: int, bos_id: int, eos_id: int) -> dict:
    """Pad a list of examples into tensors; `n_tokens` stays a Python int (no host sync later).

    Padding only: whatever else a batch needs (cached teacher outputs) is looked up by its
    `index` (the split's example rows) by whoever needs it."""
    b = len(items)
    src_len = max(len(it["src"]) for it in items)
    tgt_len = max(len(it["tgt"]) for it in items) + 1
    src = torch.full((b, src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((b, tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((b, tgt_len), pad_id, dtype=torch.long)
    for i, it in enumerate(items):
        s, t = torch.as_tensor(it["src"]), torch.as_tensor(it["tgt"])
        src[i, : len(s)] = s
        tgt_in[i, 0] = bos_id
        tgt_in[i, 1 : len(t) + 1] = t
        tgt_out[i, : len(t)] = t
        tgt_out[i, len(t)] = eos_id
    ratings = torch.tensor([it["rating"] for it in items], dtype=torch.float)
    batch = {
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "src": src,
        "src_mask": src != pad_id,
        "tgt_in": tgt_in,
        "tgt_out": tgt_out,
        "tgt_mask": tgt_out != pad_id,
        "topic": torch.tensor([it["topic"] for it in items], dtype=torch.long),
        "rating": torch.nan_to_num(ratings, nan=0.0),
        "rating_mask": ~torch.isnan(ratings),
        "n_tokens": sum(len(it["tgt"]) + 1 for it in items),
    }
    return batch
