"""Ancestral sampling with temperature and nucleus (top-p) filtering."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from distillab.decoding.base import token_by_token
from distillab.decoding.protocol import Decodable
from distillab.errors import ConfigError, check_range


def nucleus(probs: Tensor, top_p: float) -> Tensor:
    """``probs [N, V]`` with all but each row's nucleus zeroed (not renormalised): the most
    likely tokens whose summed probability first reaches ``top_p``; the top token always
    stays. Ties keep the lower id first, as ``argmax`` does."""
    sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of the more likely tokens
    sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, sorted_p)


@dataclass(frozen=True)
class Sample:
    """Batched sampling from ``softmax(logits / temperature)`` restricted to the top-p nucleus.

    ``seed``: each call draws from a fresh ``torch.Generator`` seeded with it (the same inputs
    give the same tokens); ``None`` draws from torch's global generator.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        check_range(
            "decoding.temperature",
            self.temperature,
            0,
            None,
            low_inclusive=False,
            high_inclusive=False,
        )
        check_range("decoding.top_p", self.top_p, 0, 1, low_inclusive=False)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigError(f"decoding.seed={self.seed!r} must be an integer or null")

    @torch.inference_mode()
    def __call__(
        self,
        model: Decodable,
        src: Tensor,
        src_mask: Tensor,
        *,
        bos_id: int,
        eos_id: int,
        max_len: int,
    ) -> Tensor:
        """Tokens ``[B, <=max_len]`` without BOS, EOS included, pad after it (an inference
        tensor). Pad and BOS have probability 0, so they are never drawn."""
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=src.device).manual_seed(self.seed)

        def pick(scores: Tensor) -> Tensor:
            probs = torch.softmax(scores / self.temperature, dim=-1)
            if self.top_p < 1.0:
                probs = nucleus(probs, self.top_p)
            return torch.multinomial(probs, 1, generator=generator).squeeze(1)

        return token_by_token(model, src, src_mask, bos_id, eos_id, max_len, pick)
