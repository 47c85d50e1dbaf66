"""From conversations to (context turns, target turn) examples, split by conversation."""

from __future__ import annotations

import random
from dataclasses import dataclass

from distillab.data.sources import Conversation
from distillab.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Example:
    conv: int  # index into the split's conversation list
    turn: int  # index of the target turn; its context is the turns before it


def clean_conversation(conv: Conversation, drop_empty_turns: bool) -> Conversation:
    turns = tuple(t.strip() for t in conv.turns)
    if drop_empty_turns:
        turns = tuple(t for t in turns if t)
    return Conversation(conv.id, turns, conv.topic, conv.rating)


def split_conversations(
    convs: list[Conversation],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    max_examples: int | None = None,
) -> dict[str, list[Conversation]]:
    """Seeded split by conversation, so no conversation appears in two splits.

    With `max_examples`, whole conversations are taken in the seeded order until about that
    many target turns are collected, then split: quick runs keep the same split logic.
    """
    order = list(range(len(convs)))
    random.Random(seed).shuffle(order)
    if max_examples is not None:
        taken, count = [], 0
        for i in order:
            if count >= max_examples:
                break
            taken.append(i)
            count += max(len(convs[i].turns) - 1, 0)
        order = taken
    n = len(order)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        taken = (
            f"; data.max_examples={max_examples} took {n} of {len(convs)}"
            if max_examples is not None
            else ""
        )
        raise DataError(
            f"only {n} conversations: too few to split into train/val/test "
            f"(data.val_fraction={val_fraction}, data.test_fraction={test_fraction}{taken})"
        )
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    return {
        name: [convs[i] for i in idx] for name, idx in zip(SPLITS, (train, val, test), strict=True)
    }


def build_examples(
    convs: list[Conversation],
    min_target_words: int,
    max_target_words: int,
    dedupe: bool,
    context_turns: int,
) -> list[Example]:
    """Every turn after the first is a target; filters apply to the target turn."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for ci, conv in enumerate(convs):
        for ti in range(1, len(conv.turns)):
            n_words = len(conv.turns[ti].split())
            if not (min_target_words <= n_words <= max_target_words):
                continue
            if dedupe:
                key = conv.turns[max(0, ti - context_turns) : ti + 1]
                if key in seen:
                    continue
                seen.add(key)
            out.append(Example(ci, ti))
    return out
