"""Tokenised splits stored flat (one int32 array of turn tokens + offsets): tokenised once, cached."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import Dataset

from distillab.data.examples import Example
from distillab.data.sources import Conversation


@dataclass
class EncodedSplit:
    tokens: np.ndarray  # int32, all turns of the split, concatenated
    turn_offsets: np.ndarray  # int64 [n_turns + 1]
    conv_start: np.ndarray  # int64 [n_convs + 1], index of each conversation's first turn
    examples: np.ndarray  # int64 [n_examples, 2]: (conversation, target turn)
    topic: np.ndarray  # int64 [n_convs]
    rating: np.ndarray  # float32 [n_convs], NaN = unrated

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)

    def turn(self, conv: int, t: int) -> np.ndarray:
        g = self.conv_start[conv] + t
        return self.tokens[self.turn_offsets[g] : self.turn_offsets[g + 1]]

    def conversation_span(self, conv):
        """(start, end) of conversation(s) ``conv`` (an int or an array) in ``tokens``."""
        first, last = self.conv_start[conv], self.conv_start[conv + 1]
        return self.turn_offsets[first], self.turn_offsets[last]


def encode_split(
    convs: list[Conversation], examples: list[Example], tokenizer, topic_index: dict[str, int]
) -> EncodedSplit:
    texts = [t for c in convs for t in c.turns]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    lens = np.array([len(x) for x in ids], dtype=np.int64)
    turn_offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    conv_start = np.concatenate([[0], np.cumsum([len(c.turns) for c in convs])]).astype(np.int64)
    tokens = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(lens.sum()))
    return EncodedSplit(
        tokens=tokens,
        turn_offsets=turn_offsets,
        conv_start=conv_start,
        examples=np.array([(e.conv, e.turn) for e in examples], dtype=np.int64).reshape(-1, 2),
        topic=np.array([topic_index.get(c.topic or "none", 0) for c in convs], dtype=np.int64),
        rating=np.array([np.nan if c.rating is None else c.rating for c in convs], np.float32),
    )


class DialogueDataset(Dataset):
    """Assembles `<other> turn <self> turn ...` contexts on the fly from cached turn tokens.

    Speaker markers are relative to the target's speaker. Optional augmentation (training
    only): drop whole context turns (never the most recent) and replace source tokens by UNK.

    The task heads label the whole conversation (its topic is the prompt its speakers were
    given, its rating theirs), so with `head_turns > 0` they read the conversation's opening
    turns (`head_src`), where the prompt is discussed, instead of the last few turns before
    the target; with 0 they read the generation source. Every item also carries the whole
    conversation's tokens (`conv`, its first `bag_len`), which heads with
    `task.conversation_bag` read as a bag of words: a label of the whole conversation (its
    rating above all) depends on how it went and how long it ran, which no bounded window shows.
    """

    def __init__(
        self,
        split: EncodedSplit,
        context_turns: int,
        max_source_len: int,
        max_target_len: int,
        self_id: int,
        other_id: int,
        unk_id: int,
        token_dropout: float = 0.0,
        context_dropout: float = 0.0,
        seed: int = 0,
        rows: np.ndarray | None = None,
        head_turns: int = 0,
        bag_len: int = 4096,
    ) -> None:
        self.split = split
        # example rows of the split this dataset serves; `index` in a batch is the row, so
        # caches keyed by row (teacher outputs, decodes) survive subsetting
        self.rows = np.arange(len(split.examples)) if rows is None else rows
        self.alt_targets: tuple[np.ndarray, np.ndarray] | None = None
        self.gold_fraction = 1.0
        self.context_turns = context_turns
        self.max_source_len = max_source_len
        self.max_target_len = max_target_len
        self.head_turns = head_turns
        self.bag_len = bag_len
        self.self_id, self.other_id, self.unk_id = self_id, other_id, unk_id
        self.token_dropout = token_dropout
        self.context_dropout = context_dropout
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def use_targets(self, tokens: np.ndarray, offsets: np.ndarray, gold_fraction: float) -> None:
        """Train on other targets (e.g. teacher decodes for sequence-level KD), indexed by row;
        each item keeps its gold target with probability `gold_fraction`."""
        self.alt_targets, self.gold_fraction = (tokens, offsets), gold_fraction

    def source(self, conv: int, t: int) -> np.ndarray:
        parts = []
        for j in range(max(0, t - self.context_turns), t):
            if self.context_dropout > 0 and j < t - 1 and self.rng.random() < self.context_dropout:
                continue
            marker = self.self_id if (t - j) % 2 == 0 else self.other_id
            parts += [np.array([marker], dtype=np.int32), self.split.turn(conv, j)]
        src = np.concatenate(parts)[-self.max_source_len :]
        if self.token_dropout > 0:
            drop = self.rng.random(len(src)) < self.token_dropout
            drop &= (src != self.self_id) & (src != self.other_id)
            src = np.where(drop, self.unk_id, src)
        return src

    def opening(self, conv: int) -> np.ndarray:
        """The conversation's first `head_turns` turns with speaker markers (first speaker
        `<other>`), cut to `max_source_len` from the start; never augmented."""
        n = min(self.head_turns, int(self.split.conv_start[conv + 1] - self.split.conv_start[conv]))
        parts = []
        for j in range(n):
            marker = self.other_id if j % 2 == 0 else self.self_id
            parts += [np.array([marker], dtype=np.int32), self.split.turn(conv, j)]
        return np.concatenate(parts)[: self.max_source_len]

    def conversation(self, conv: int) -> np.ndarray:
        """All the conversation's turn tokens (no markers), its first `bag_len`; a view."""
        start, end = self.split.conversation_span(conv)
        return self.split.tokens[start : min(end, start + self.bag_len)]

    def target(self, conv: int, t: int) -> np.ndarray:
        return self.split.turn(conv, t)[: self.max_target_len - 1]  # room for EOS

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        conv, t = (int(x) for x in self.split.examples[row])
        tgt = self.target(conv, t)
        if self.alt_targets is not None and self.rng.random() >= self.gold_fraction:
            tokens, offsets = self.alt_targets
            tgt = tokens[offsets[row] : offsets[row + 1]][: self.max_target_len - 1]
        src = self.source(conv, t)
        return {
            "index": row,
            "src": src,
            "head_src": self.opening(conv) if self.head_turns > 0 else src,
            "conv": self.conversation(conv),
            "tgt": tgt,
            "topic": int(self.split.topic[conv]),
            "rating": float(self.split.rating[conv]),
        }

    @cached_property
    def lengths(self) -> np.ndarray:
        """Source + target length per example (without augmentation), for bucketing;
        computed once per dataset (every loader Lightning builds reuses it)."""
        s = self.split
        out = np.empty(len(self.rows), dtype=np.int64)
        for i, (conv, t) in enumerate(s.examples[self.rows]):
            g = s.conv_start[conv]
            lo = g + max(0, t - self.context_turns)
            n_src = s.turn_offsets[g + t] - s.turn_offsets[lo] + (g + t - lo)
            n_tgt = s.turn_offsets[g + t + 1] - s.turn_offsets[g + t]
            out[i] = min(n_src, self.max_source_len) + min(n_tgt + 1, self.max_target_len)
        return out

    def topic_weights(self) -> torch.Tensor:
        """1 / frequency of each example's topic: a topic-balanced sampler's weights."""
        topics = self.split.topic[self.split.examples[self.rows, 0]]
        counts = np.bincount(topics)
        return torch.as_tensor(1.0 / counts[topics], dtype=torch.double)


def subset_rows(n: int, size: int | None, seed: int) -> np.ndarray | None:
    """A seeded subset of `size` of `n` example rows, sorted (`data.max_train_examples`: fewer
    labelled pairs for the student while the tokenizer and the splits stay those of the full
    data); None: all of them."""
    if size is None or size >= n:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size, replace=False))
