"""The teacher-output cache's codec interface: how a token's top-k + tail-draw log-probabilities
and ids are stored on disk and read back. A codec is one file plus one YAML
(`conf/distill/codec/<name>.yaml`, chosen by `_target_`); its `key()` (target and parameters)
is part of the cache's key and recorded in the cache, so that an entry written by another
codec is refused, never misread.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from distillab.losses.topk import topk_kd_loss
from distillab.teachers.codecs.draws import add_tail_draws

Passes = Callable[[], Iterable[Tensor]]  # a fresh teacher pass: [tokens, vocab] log-probs


@dataclass(frozen=True)
class Layout:
    """What one token holds: `k` top columns, then `tail_samples` draws, ids in [0, vocab)."""

    k: int
    tail_samples: int
    vocab: int

    @property
    def columns(self) -> int:
        return self.k + self.tail_samples

    @property
    def id_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.vocab)))


class Codec(ABC):
    """Encodes a batch of tokens' sparse teacher outputs into per-token arrays of fixed shape
    (memory-mapped `<name>.npy` files of [tokens, *shape]) and decodes any subset of tokens
    back, vectorised in torch."""

    # a cache-wide array (name -> [..] float32, `global_<name>.npy`) computed by `prepare`
    global_names: tuple[str, ...] = ()
    # its columns carry the tail draws' probabilities, so a temperature schedule can
    # importance-weight them away from the softening temperature
    reweights: bool = True

    @abstractmethod
    def params(self) -> dict:
        """The parameters that shape what is stored (part of the cache key)."""

    def key(self) -> dict:
        """`_target_` and parameters: what a cache records and is keyed by."""
        cls = type(self)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **self.params()}

    @abstractmethod
    def arrays(self, layout: Layout) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Per-token arrays: name -> (dtype, shape of one token's entry)."""

    @abstractmethod
    def encode(
        self, values: Tensor, ids: Tensor, layout: Layout, gen: torch.Generator
    ) -> dict[str, np.ndarray]:
        """`values` [N, k + S] float32 log-probabilities (top-k descending, then the draws),
        `ids` [N, k + S] int64 -> one array [N, *shape] per name of `arrays`. `gen`: a
        seeded generator for any randomness (the cache is reproducible from its key)."""

    @abstractmethod
    def decode(self, arrays: dict[str, np.ndarray], layout: Layout) -> tuple[Tensor, Tensor]:
        """Tokens' arrays ([N, *shape] each, read from the memory-mapped files) -> (values
        [N, k + S] float, ids [N, k + S] int64) as `topk_kd_loss` reads them, vectorised over
        the tokens."""

    def bytes_per_token(self, layout: Layout) -> int:
        """Bytes one token takes in the arrays (without the per-row offsets)."""
        return sum(
            np.dtype(dtype).itemsize * math.prod(shape)
            for dtype, shape in self.arrays(layout).values()
        )

    def columns(self, layout: Layout) -> int:
        """Columns of a decoded token (the layout's, plus any per-token scalars a codec's
        estimator reads)."""
        return layout.columns

    def prepare(self, passes: Passes, layout: Layout) -> dict[str, np.ndarray]:
        """Cache-wide arrays (`global_names`) from teacher passes over the training target
        tokens, computed before any token is encoded; none by default (no extra pass)."""
        return {}

    def sample(
        self, log_probs: Tensor, layout: Layout, gen: torch.Generator, prior: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """One batch's [N, vocab] softened log-probabilities -> what `encode` stores ([N,
        columns] values and ids): by default the top-k and `tail_samples` systematic draws
        from the tail (`add_tail_draws`)."""
        top_v, top_i = log_probs.topk(layout.k, dim=-1)
        if layout.tail_samples:
            top_v, top_i = add_tail_draws(log_probs, top_v, top_i, layout.tail_samples, gen)
        return top_v, top_i

    def dense_vectors(self, prior: dict[str, Tensor]) -> Tensor | None:
        """Vectors [D, vocab] along which the estimator reads the student's log-probs (passed
        to it as `dense`, read with the sparse columns in one op: `losses.reads`); none by
        default."""
        return None

    def estimator(self, prior: dict[str, Tensor]) -> Callable[..., Tensor]:
        """The KD loss that reads the decoded columns (`topk_kd_loss`'s arguments, plus
        `full_log_probs`, the student's [..., vocab] log_softmax at T=1 when the caller has
        it, and `dense`, its reads along `dense_vectors`); the cache-wide arrays loaded as
        tensors."""
        return topk_kd_loss
