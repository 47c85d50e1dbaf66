"""Multi-head scaled dot-product attention (Vaswani et al.) over the encoder states."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from distillab.data.turns import SourceTurns
from distillab.models.attention.base import Attention, AttentionMemory, mask_bias
from distillab.models.attention.registry import register


@register("multihead")
class MultiHeadAttention(Attention):
    """``heads`` heads of ``softmax(q_h k_h^T / sqrt(d)) v_h``, concatenated and projected.

    The memory holds the value projection ``[B, Tk, Hk]`` and the key projection, already
    scaled by ``1/sqrt(d)`` and transposed ``[B, Hq, Tk]`` (the heads side by side along the
    features), so the export passes the same three tensors as the other kinds. The weights it
    returns are the heads' mean ``[B, Tq, Tk]``: what attention transfer and the attention
    maps read."""

    def __init__(self, query_size: int, key_size: int, heads: int = 4) -> None:
        self.check(query_size, key_size, heads=heads)
        super().__init__(query_size, key_size)
        self.heads = heads
        self.query_proj = nn.Linear(query_size, query_size, bias=False)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)
        self.value_proj = nn.Linear(key_size, key_size, bias=False)
        self.out_proj = nn.Linear(key_size, key_size, bias=False)

    @classmethod
    def check(cls, query_size: int, key_size: int, **options: object) -> None:
        heads = options.get("heads", 4)
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"attention_heads={heads!r} must be an integer >= 1")
        for name, size in (("query", query_size), ("key", key_size)):
            if size % heads:
                raise ValueError(
                    f"attention_heads={heads} must divide the hidden size ({name} size {size})"
                )

    def precompute(
        self, keys: Tensor, key_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        scale = 1.0 / math.sqrt(self.query_size // self.heads)
        scorer = (self.key_proj(keys) * scale).transpose(1, 2).contiguous()
        values = self.value_proj(keys)
        return AttentionMemory(values, scorer, mask_bias(key_mask, values.dtype))

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        b, tq, _ = query.shape
        h = self.heads
        q = self.query_proj(query).view(b, tq, h, -1).transpose(1, 2)  # [B, h, Tq, d]
        k = memory.scorer.view(b, h, -1, memory.scorer.size(-1))  # [B, h, d, Tk]
        v = memory.values.view(b, -1, h, memory.values.size(-1) // h).transpose(1, 2)
        weights = torch.softmax(torch.matmul(q, k) + memory.bias.unsqueeze(1), dim=-1)
        context = torch.matmul(weights, v).transpose(1, 2).reshape(b, tq, -1)  # [B, Tq, Hk]
        return self.out_proj(context), weights.mean(dim=1)
