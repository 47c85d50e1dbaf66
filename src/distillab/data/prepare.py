"""Build the encoded-corpus cache: split, filter, check, train the tokenizer, encode.

What `DialogueDataModule.load` runs once per corpus key (through `build_once`); every data
check comes before the tokenizer is trained, so bad data fails fast and names its filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from distillab.data.encoded import encode_split
from distillab.data.examples import SPLITS, build_examples, clean_conversation, split_conversations
from distillab.data.sources import Corpus
from distillab.data.tokenizer import pretrained_tokenizer, train_tokenizer
from distillab.errors import DataError
from distillab.utils.io import atomic_write_json


def build_encoded_corpus(
    corpus: Corpus,
    out: Path,
    *,
    split_args: dict[str, Any],
    example_args: dict[str, Any],
    tok_args: dict[str, Any],
    tokenizer_path: str | None,
    drop_empty_turns: bool,
) -> None:
    """Split, filter, check, train the tokenizer and encode into `out` (a fresh temp dir
    that `build_once` renames into place): `tokenizer/`, `encoded.npz`, `info.json`."""
    convs = [clean_conversation(c, drop_empty_turns) for c in corpus.conversations]
    convs = [c for c in convs if len(c.turns) >= 2]
    if not convs:
        raise DataError(
            f"{corpus.path}: no usable conversations (none of its "
            f"{len(corpus.conversations)} has 2 non-empty turns)"
        )
    splits = split_conversations(convs, **split_args)
    examples = {n: build_examples(splits[n], **example_args) for n in SPLITS}
    for name in SPLITS:
        if not examples[name]:
            raise empty_split_error(
                corpus.path, name, splits, len(convs), example_args, split_args["max_examples"]
            )
    if tokenizer_path is not None:
        tok = pretrained_tokenizer(tokenizer_path)
    else:
        tok = train_tokenizer([t for c in splits["train"] for t in c.turns], **tok_args)
    topics = ["none"] + sorted({c.topic for c in convs if c.topic})
    index = {t: i for i, t in enumerate(topics)}
    tok.save_pretrained(str(out / "tokenizer"))
    arrays = {}
    for name in SPLITS:
        enc = encode_split(splits[name], examples[name], tok, index)
        arrays.update({f"{name}.{k}": v for k, v in enc.arrays().items()})
    np.savez(out / "encoded.npz", **arrays)
    counts = {n: {"conversations": len(splits[n]), "examples": len(examples[n])} for n in SPLITS}
    atomic_write_json(out / "info.json", {"topics": topics, "splits": counts})


def empty_split_error(
    path: str,
    name: str,
    splits: dict[str, list],
    n_convs: int,
    example_args: dict[str, Any],
    max_examples: int | None,
) -> DataError:
    """Which filter emptied a split, with its values and counts."""
    lo, hi = example_args["min_target_words"], example_args["max_target_words"]
    convs = splits[name]
    n_targets = sum(len(c.turns) - 1 for c in convs)
    outside = sum(not lo <= len(t.split()) <= hi for c in convs for t in c.turns[1:])
    why = f"of {n_targets} target turns in {len(convs)} conversations, {outside} were outside the word range"
    if n_targets - outside > 0:  # the rest were dropped as repeats
        why += f", {n_targets - outside} repeated an earlier example (data.dedupe=true)"
    msg = (
        f"{path}: data.min_target_words={lo}, data.max_target_words={hi} left the {name} "
        f"split with no examples ({why})"
    )
    if max_examples is not None:
        n_taken = sum(len(v) for v in splits.values())
        msg += (
            f"; data.max_examples={max_examples} kept {n_taken} of {n_convs} usable conversations"
        )
    return DataError(msg + ". Widen the word range or use more data.")
