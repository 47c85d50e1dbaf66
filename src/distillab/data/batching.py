"""Length-bucketed batches with padding masks (padding is cheap, packed sequences are slow on
CPU): the sampler, the collate function that pads examples into a `Batch`, and the loader."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from distillab.data.batch import Batch, ConversationBag
from distillab.data.turns import source_turns


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length.

    Training: each epoch shuffles (or, with `weights`, draws with replacement, e.g. for a
    topic-balanced sampler), sorts pools of `batch_size * bucket_multiplier` examples by
    length, cuts them into batches and shuffles the batch order. Evaluation (`shuffle=False`):
    one fixed, sorted order.

    Distributed (`num_replicas` ranks): training batches are the global batches of a
    single-process sampler with `batch_size * num_replicas` (same seed, same pools), each rank
    taking its slice, so N processes see what one process with the global batch sees;
    evaluation examples are dealt out, every num_replicas-th to each rank (metrics are summed
    across ranks). `resume_at` skips the batches of an interrupted pass already seen.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        bucket_multiplier: int = 50,
        weights: Sequence[float] | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * max(1, bucket_multiplier)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank
        self.skip = 0  # batches of the next pass already trained on (a resumed run)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches: int) -> None:
        """Continue an interrupted pass: the next pass is `epoch`'s, without its first
        `batches` batches (those were trained on before the interruption)."""
        self.epoch, self.skip = epoch, batches

    def __len__(self) -> int:
        if not self.shuffle:  # each rank evaluates every num_replicas-th example
            n = len(range(self.rank, len(self.lengths), self.num_replicas))
            return (n + self.batch_size - 1) // self.batch_size
        size = self.batch_size * self.num_replicas  # the global batch
        return (len(self.lengths) + size - 1) // size

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        yield from itertools.islice(self._batches(), skip, None)

    def _batches(self) -> Iterator[list[int]]:
        """Training: global batches (batch_size x num_replicas examples of similar length),
        this rank's share of each; evaluation: every num_replicas-th example of the sorted
        order (every rank gets some, so all take part in the metrics' sync)."""
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")[self.rank :: self.num_replicas]
            yield from (
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            )
            return
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # a fresh order each pass even if nobody calls set_epoch
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=gen).numpy()
        else:
            order = torch.randperm(n, generator=gen).numpy()
        size, pool_size = self.batch_size * self.num_replicas, self.pool * self.num_replicas
        batches = []
        for start in range(0, n, pool_size):
            pool = order[start : start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i : i + size] for i in range(0, len(pool), size)]
        for b in torch.randperm(len(batches), generator=gen).tolist():
            yield self._share(batches[b]).tolist()

    def _share(self, batch: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of a global batch (never empty: a global batch smaller
        than the number of ranks lends its examples round-robin)."""
        if self.num_replicas == 1:
            return batch
        part = np.array_split(batch, self.num_replicas)[self.rank]
        return part if len(part) else batch[self.rank % len(batch) :][:1]


def bucket_loader(
    ds: Dataset,
    collate_fn: Callable[[list], Batch],
    batch_size: int,
    train: bool,
    seed: int,
    bucket_multiplier: int,
    weights: Sequence[float] | None,
    num_replicas: int,
    rank: int,
    num_workers: int,
    resume_at: tuple[int, int] | None = None,
) -> DataLoader:
    """A loader of `ds` (which has `lengths`) in length-bucketed batches (`BucketBatchSampler`:
    shuffled for training, one sorted order for evaluation). `resume_at` (epoch, batches):
    continue an interrupted training pass; a pass that had finished goes on with the next."""
    sampler = BucketBatchSampler(
        ds.lengths,
        batch_size,
        shuffle=train,
        seed=seed,
        bucket_multiplier=bucket_multiplier,
        weights=weights,
        num_replicas=num_replicas,
        rank=rank,
    )
    if resume_at is not None:
        epoch, batches = resume_at
        sampler.resume_at(*((epoch, batches) if batches < len(sampler) else (epoch + 1, 0)))
    return DataLoader(
        ds,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def collate(
    items: list[dict],
    pad_id: int,
    bos_id: int,
    eos_id: int,
    conversation_bag: bool = False,
    speakers: tuple[int, int] | None = None,
) -> Batch:
    """Pad a list of examples into a :class:`Batch`; `n_tokens` stays a Python int (no host
    sync later). `conversation_bag`: also concatenate the items' whole conversations (only
    heads with `task.conversation_bag` read them). `speakers`: the (self, other) marker ids,
    given when the model's attention reads the context's turns (`Batch.turns`, read off the
    markers of the padded sources: a few tensor ops per batch, none when not asked).

    Padding only: whatever else a batch needs (cached teacher outputs) is looked up by its
    `index` (the split's example rows) by whoever needs it."""
    b = len(items)
    src = _pad([it["src"] for it in items], pad_id)
    # heads that read the generation source (data.head_turns=0) get no tensor of their own,
    # so the model encodes the source once
    same = all(it["head_src"] is it["src"] for it in items)
    head_src = None if same else _pad([it["head_src"] for it in items], pad_id)
    tgt_len = max(len(it["tgt"]) for it in items) + 1
    tgt_in = torch.full((b, tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((b, tgt_len), pad_id, dtype=torch.long)
    for i, it in enumerate(items):
        t = torch.as_tensor(it["tgt"])
        tgt_in[i, 0] = bos_id
        tgt_in[i, 1 : len(t) + 1] = t
        tgt_out[i, : len(t)] = t
        tgt_out[i, len(t)] = eos_id
    ratings = torch.tensor([it["rating"] for it in items], dtype=torch.float)
    return Batch(
        index=torch.tensor([it["index"] for it in items], dtype=torch.long),
        src=src,
        src_mask=src != pad_id,
        head_src=head_src,  # what the task heads read (`DialogueDataset.opening`)
        head_src_mask=None if head_src is None else head_src != pad_id,
        conversation=_bag(items) if conversation_bag else None,
        turns=None if speakers is None else source_turns(src, src != pad_id, *speakers),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=tgt_out != pad_id,
        topic=torch.tensor([it["topic"] for it in items], dtype=torch.long),
        rating=torch.nan_to_num(ratings, nan=0.0),
        rating_mask=~torch.isnan(ratings),
        n_tokens=sum(len(it["tgt"]) + 1 for it in items),
    )


def _bag(items: list[dict]) -> ConversationBag:
    """The items' whole conversations, concatenated (an `embedding_bag` input; see
    `DialogueDataset.conversation`): row i is tokens[offsets[i]:offsets[i + 1]]."""
    lens = torch.tensor([len(it["conv"]) for it in items], dtype=torch.long)
    tokens = torch.from_numpy(np.concatenate([it["conv"] for it in items])).long()
    return ConversationBag(tokens, torch.cumsum(lens, 0) - lens)


def _pad(seqs: list, pad_id: int) -> torch.Tensor:
    """Right-pad token sequences into a [B, T] long tensor."""
    out = torch.full((len(seqs), max(len(x) for x in seqs)), pad_id, dtype=torch.long)
    for i, x in enumerate(seqs):
        out[i, : len(x)] = torch.as_tensor(x)
    return out
