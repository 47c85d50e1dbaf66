"""How a dialogue becomes a model's source, with nothing heavier than the standard library, so
`distillab-chat` and `distillab-serve` (whose export path imports no torch) build it the same
way as training did (`data.encoded.DialogueDataset.source`)."""

from __future__ import annotations

import unicodedata


def clean(line: str) -> str:
    """Control and format characters removed (tabs become spaces), whitespace collapsed."""
    if line.isprintable():  # no character of category C (nor a tab): only whitespace to do
        return " ".join(line.split())
    kept = (" " if ch == "\t" else ch for ch in line)
    return " ".join(
        "".join(ch for ch in kept if not unicodedata.category(ch).startswith("C")).split()
    )


def user_turn(ids: list[int], max_source_len: int) -> list[int]:
    """A user's turn as the chat keeps it: its last `max_source_len - 1` tokens (room for its
    speaker marker), as training cut long sources on the left."""
    limit = max_source_len - 1
    return ids[-limit:] if len(ids) > limit else ids


def assemble(
    turns: list[tuple[int, list[int]]], context_turns: int, max_source_len: int
) -> list[int]:
    """The source for the next reply from `(marker, ids)` turns, oldest first: the last
    `context_turns` turns, each after its speaker's marker, cut to the last `max_source_len`
    tokens."""
    src: list[int] = []
    for marker, ids in turns[max(0, len(turns) - context_turns) :]:
        src += [marker, *ids]
    return src[-max_source_len:]
