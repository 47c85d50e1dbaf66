"""Greedy decoding: the most likely token at every step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from distillab.decoding.base import token_by_token
from distillab.decoding.protocol import Decodable


def _argmax(scores: Tensor) -> Tensor:
    return scores.argmax(dim=-1)


@dataclass(frozen=True)
class Greedy:
    """Batched greedy decoding (the :class:`~distillab.decoding.protocol.Strategy` contract)."""

    @torch.inference_mode()  # ~10% faster than no_grad at batch 1 (lighter per-op dispatch)
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
        """Tokens ``[B, <=max_len]`` without BOS, EOS included, pad after it. Runs in inference
        mode: the result is an inference tensor (read it, copy it; don't modify it in place)."""
        return token_by_token(model, src, src_mask, bos_id, eos_id, max_len, _argmax)
