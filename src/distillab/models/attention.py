"""Additive (Bahdanau) and multiplicative (Luong "general") attention with key masking."""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTENTION_KINDS = ("additive", "multiplicative")


class Attention(nn.Module):
    """Scores queries against keys; masked keys get exactly zero weight.

    The key-side projection is factored out into :meth:`precompute` so that step-by-step decoding
    projects the encoder outputs once per batch instead of once per generated token.
    """

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

    def precompute(self, keys: Tensor) -> Tensor:
        """Project ``keys [B, Tk, Hk]`` -> ``[B, Tk, Hq]``; pass the result to ``forward``."""
        return self.key_proj(keys)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        key_mask: Tensor,
        proj_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``query [B, Tq, Hq]``, ``keys [B, Tk, Hk]``, ``key_mask [B, Tk]`` (True = attendable).

        Returns ``(context [B, Tq, Hk], weights [B, Tq, Tk])``; each weight row sums to 1.
        """
        if proj_keys is None:
            proj_keys = self.precompute(keys)
        if self.kind == "additive":
            q = self.query_proj(query).unsqueeze(2)  # [B, Tq, 1, A]
            scores = self.v(torch.tanh(q + proj_keys.unsqueeze(1))).squeeze(-1)  # [B, Tq, Tk]
        else:
            scores = torch.bmm(query, proj_keys.transpose(1, 2))  # [B, Tq, Tk]
        # finfo.min rather than -inf: exp underflows to exactly 0 for masked keys whenever a row
        # has a valid key, and a fully masked row yields uniform weights instead of NaN.
        scores = scores.masked_fill(~key_mask.bool().unsqueeze(1), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights
