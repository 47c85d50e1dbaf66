"""Multiplicative (Luong "general") attention: ``score = q^T W k``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distillab.data.turns import SourceTurns
from distillab.models.attention.base import Attention, AttentionMemory, dot_scores, mask_bias
from distillab.models.attention.registry import register


@register("multiplicative")
class MultiplicativeAttention(Attention):
    """The scorer is ``(W k)^T [B, Hq, Tk]``, computed once per batch: a step scores with one
    fused ``baddbmm``."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__(query_size, key_size)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def precompute(
        self, keys: Tensor, key_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        proj = self.key_proj(keys)
        scorer = proj.transpose(1, 2).contiguous()
        return AttentionMemory(keys, scorer, mask_bias(key_mask, proj.dtype))

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(dot_scores(query, memory), dim=-1)
        return torch.matmul(weights, memory.values), weights
