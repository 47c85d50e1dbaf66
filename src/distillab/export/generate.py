"""Batched decoding of many requests at once from an exported model, each row with its own
reply length and its own choice of greedy or seeded sampling (temperature, top-p): what a
server needs to answer concurrent requests with one encoder run and one decoder run per step.
numpy only (no torch), like :mod:`distillab.export.runtime`.

    rows = [Row([5, 17, 9], max_tokens=12), Row([5, 8], 12, Sampling(0.8, 0.9, seed=1))]
    for step in decode_steps(model, rows):   # one array of ids per step (pad once finished)
        ...
    generate(model, rows)                    # the ids of every reply, EOS and pad removed

Greedy rows take the argmax of the step's logits (padding and BOS banned), as the step graph's
own choice does, so a greedy row gets the runtime's ``greedy`` tokens (a batch of greedy rows
only takes the graph's choice itself, ``pick``, and fetches no logits); sampled rows mirror :class:`distillab.decoding.Sample`
(softmax of ``logits / temperature``, the top-p nucleus, padding and BOS never drawn), each
from a ``numpy`` generator seeded with its own seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """Draw each token from ``softmax(logits / temperature)`` cut to the top-p nucleus."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be > 0 (0: greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")


@dataclass
class Row:
    """One request: its source ids, its longest reply, and sampling (``None``: greedy)."""

    src: list[int]
    max_tokens: int
    sampling: Sampling | None = None
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sampling is not None and self.rng is None:
            self.rng = np.random.default_rng(self.sampling.seed)


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """``probs [V]`` with all but the nucleus zeroed: the most likely tokens whose summed
    probability first reaches ``top_p`` (the top token always stays; ties keep the lower id
    first), as :func:`distillab.decoding.sample.nucleus`."""
    order = np.argsort(-probs, kind="stable")
    sorted_p = probs[order]
    before = np.cumsum(sorted_p) - sorted_p
    out = np.zeros_like(probs)
    out[order] = np.where(before >= top_p, 0.0, sorted_p)
    return out


def draw(logits: np.ndarray, banned: np.ndarray, s: Sampling, rng: np.random.Generator) -> int:
    """One token id drawn from ``logits [V]`` under ``s``."""
    scores = (logits.astype(np.float64) + banned) / s.temperature
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    if s.top_p < 1.0:
        probs = nucleus(probs, s.top_p)
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


def padded(rows: list[Row], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(src [B, T], mask [B, T])``: the sources right-padded (the encoder ignores padding)."""
    width = max(1, max(len(r.src) for r in rows))
    src = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        src[i, : len(r.src)] = r.src
        mask[i, : len(r.src)] = True
    return src, mask


def decode_steps(model: Any, rows: list[Row]) -> Iterator[np.ndarray]:
    """Yield, per decoder step, the ids ``[B]`` the rows chose (a row that ended, by EOS or by
    its ``max_tokens``, gets padding), until every row has ended. ``model``: a
    runtime from :func:`~distillab.export.runtime_kv.open_export` (a GRU's or a
    transformer's: its ``encode``, ``step`` and ``banned``)."""
    if not rows:
        return
    src, mask = padded(rows, model.pad_id)
    state = model.encode(src, mask)
    sampled = [i for i, r in enumerate(rows) if r.sampling is not None]
    banned = model.banned()
    limits = np.array([r.max_tokens for r in rows])
    ended = limits <= 0
    prev = np.full(len(rows), model.bos_id, dtype=np.int64)
    t = 0
    while not ended.all():
        if sampled:
            logits, state = model.step(prev, state)
            tok = np.argmax(logits + banned, axis=-1)
            for i in sampled:
                if not ended[i]:
                    tok[i] = draw(logits[i], banned, rows[i].sampling, rows[i].rng)
        else:  # all greedy: the graph's own choice, no [B, vocab] logits fetched and scanned
            tok, state = model.pick(prev, state)
        tok[ended] = model.pad_id
        yield tok.copy()
        t += 1
        ended |= (tok == model.eos_id) | (t >= limits)
        prev = tok


def reply_ids(tokens: list[int], eos_id: int, pad_id: int) -> tuple[list[int], bool]:
    """``(ids, stopped)``: a row's tokens up to its EOS (excluded), padding dropped; whether it
    ended with EOS (else its length limit)."""
    stopped = eos_id in tokens
    tokens = tokens[: tokens.index(eos_id)] if stopped else tokens
    return [t for t in tokens if t != pad_id], stopped


def generate(model: Any, rows: list[Row]) -> list[list[int]]:
    """The reply ids of every row (EOS and padding removed)."""
    steps = list(decode_steps(model, rows))
    if not steps:
        return [[] for _ in rows]
    tokens = np.stack(steps, 1)
    return [reply_ids(t.tolist(), model.eos_id, model.pad_id)[0] for t in tokens]
