"""Additive (Bahdanau) and multiplicative (Luong "general") attention with key masking."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from distillab.config.constants import ATTENTION_KINDS


class AttentionMemory(NamedTuple):
    """What every query of a batch attends to, prepared once by :meth:`Attention.precompute`:
    a decoder step then scores with one fused op instead of re-projecting and re-masking."""

    values: Tensor  # [B, Tk, Hk] the keys themselves; contexts are their weighted means
    scorer: Tensor  # multiplicative: (W k)^T [B, Hq, Tk]; additive: U k + b [B, Tk, Hq]
    bias: Tensor  # [B, 1, Tk] 0 on real keys, the dtype's min on masked ones

    def index_select(self, index: Tensor) -> AttentionMemory:
        """Rows ``index`` of every part (e.g. each row repeated for beam search's ``B*K``)."""
        return AttentionMemory(*(t.index_select(0, index) for t in self))


class Attention(nn.Module):
    """Scores queries against keys; masked keys get exactly zero weight."""

    def __init__(self, query_size: int, key_size: int, kind: str = "multiplicative") -> None:
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"attention kind must be one of {ATTENTION_KINDS}, got {kind!r}")
        self.kind = kind
        self.query_size = query_size
        self.key_size = key_size
        if kind == "additive":
            # score = v^T tanh(W q + U k); U k is the precomputable part.
            self.key_proj = nn.Linear(key_size, query_size, bias=True)
            self.query_proj = nn.Linear(query_size, query_size, bias=False)
            self.v = nn.Linear(query_size, 1, bias=False)
        else:
            # score = q^T W k; W k is the precomputable part.
            self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def precompute(self, keys: Tensor, key_mask: Tensor) -> AttentionMemory:
        """``keys [B, Tk, Hk]``, ``key_mask [B, Tk]`` (True = attendable) -> the memory that
        :meth:`forward` reads; the key projection and the mask are applied once per batch."""
        proj = self.key_proj(keys)
        scorer = proj if self.kind == "additive" else proj.transpose(1, 2).contiguous()
        # finfo.min rather than -inf: exp underflows to exactly 0 for masked keys whenever a row
        # has a valid key, and a fully masked row yields uniform weights instead of NaN (any
        # realistic score plus min rounds to min itself).
        dtype = proj.dtype
        bias = torch.zeros(key_mask.shape, dtype=dtype, device=keys.device)
        bias = bias.masked_fill(~key_mask.bool(), torch.finfo(dtype).min).unsqueeze(1)
        return AttentionMemory(keys, scorer, bias)

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        """``query [B, Tq, Hq]`` -> ``(context [B, Tq, Hk], weights [B, Tq, Tk])``; each weight
        row sums to 1."""
        if self.kind == "additive":
            q = self.query_proj(query).unsqueeze(2)  # [B, Tq, 1, A]
            scores = self.v(torch.tanh(q + memory.scorer.unsqueeze(1))).squeeze(-1)
            scores = scores + memory.bias  # [B, Tq, Tk]
        else:
            scores = torch.baddbmm(memory.bias, query, memory.scorer)  # [B, Tq, Tk]
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights, memory.values)
        return context, weights
