"""Additive (Bahdanau) attention: ``score = v^T tanh(W q + U k + b)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distillab.data.turns import SourceTurns
from distillab.models.attention.base import Attention, AttentionMemory, mask_bias
from distillab.models.attention.registry import register


@register("additive")
class AdditiveAttention(Attention):
    """The scorer is ``U k + b [B, Tk, Hq]``, computed once per batch."""

    scorer_src_axis = 1

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__(query_size, key_size)
        self.key_proj = nn.Linear(key_size, query_size, bias=True)
        self.query_proj = nn.Linear(query_size, query_size, bias=False)
        self.v = nn.Linear(query_size, 1, bias=False)

    def precompute(
        self, keys: Tensor, key_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        proj = self.key_proj(keys)
        return AttentionMemory(keys, proj, mask_bias(key_mask, proj.dtype))

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        q = self.query_proj(query).unsqueeze(2)  # [B, Tq, 1, A]
        scores = self.v(torch.tanh(q + memory.scorer.unsqueeze(1))).squeeze(-1)
        weights = torch.softmax(scores + memory.bias, dim=-1)  # [B, Tq, Tk]
        return torch.matmul(weights, memory.values), weights
