"""Luong-style attentional GRU decoder.

Design choice (speed): there is *no input feeding* -- the previous attentional state is not fed
back into the GRU input. That makes the recurrent part independent of attention, so under teacher
forcing the whole target sequence goes through ``nn.GRU`` in ONE fused call and attention is
computed for all positions at once with batched matmuls. On CPU this is several times faster
than a Python loop over time steps. The same ``forward`` with ``T == 1`` serves step-by-step
generation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distillab.models.attention import Attention


class GRUDecoder(nn.Module):
    """Multi-layer GRU -> attention over encoder outputs -> ``tanh(W_c [h; ctx])``."""

    def __init__(
        self,
        emb_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: str = "multiplicative",
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.gru = nn.GRU(
            emb_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = Attention(hidden_size, hidden_size, attention)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)

    def precompute(self, enc_out: Tensor) -> Tensor:
        """Project encoder outputs once for repeated single-step calls."""
        return self.attention.precompute(enc_out)

    def forward(
        self,
        y_emb: Tensor,
        hidden0: Tensor,
        enc_out: Tensor,
        enc_mask: Tensor,
        proj_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Decode ``y_emb [B, T, E]`` from ``hidden0 [L, B, H]``.

        Returns ``(attn_hidden [B, T, H], hidden [L, B, H], weights [B, T, Tsrc],
        states [B, T, H])`` where ``states`` are the top-layer GRU outputs.
        """
        states, hidden = self.gru(y_emb, hidden0.contiguous())
        context, weights = self.attention(states, enc_out, enc_mask, proj_keys)
        attn_hidden = torch.tanh(self.combine(torch.cat([states, context], dim=-1)))
        return attn_hidden, hidden, weights, states
