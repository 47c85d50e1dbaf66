"""Luong-style attentional GRU decoder.

Design choice (speed): there is *no input feeding* -- the previous attentional state is not fed
back into the GRU input. That makes the recurrent part independent of attention, so under teacher
forcing the whole target sequence goes through ``nn.GRU`` in ONE fused call and attention is
computed for all positions at once with batched matmuls. On CPU this is several times faster
than a Python loop over time steps. Generation uses :meth:`GRUDecoder.step`: the same math for
one token, with the GRU's cells called directly (``torch.gru_cell``), which skips most of
``nn.GRU``'s per-call overhead -- at batch 1 that overhead, not arithmetic, is a small
model's decoding time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distillab.data.turns import SourceTurns
from distillab.models.attention import AttentionMemory, build_attention
from distillab.models.rnn import gru_weights


class GRUDecoder(nn.Module):
    """Multi-layer GRU -> attention over encoder outputs -> ``tanh(W_c [h; ctx])``."""

    def __init__(
        self,
        emb_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: str = "multiplicative",
        attention_options: dict | None = None,
    ) -> None:
        """`attention`: a registered kind (`distillab.models.attention`) or a dotted path;
        `attention_options`: its keyword arguments (e.g. ``{"heads": 4}``)."""
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
        self.attention = build_attention(
            attention, hidden_size, hidden_size, **(attention_options or {})
        )
        self.combine = nn.Linear(2 * hidden_size, hidden_size)

    def precompute(
        self, enc_out: Tensor, enc_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        """Encoder outputs ``[B, Tsrc, H]``, their mask (and the source's turns, for a kind
        that reads them) -> the attention memory, prepared once per batch and read by every
        decoder position or step."""
        return self.attention.precompute(enc_out, enc_mask, turns)

    def forward(
        self, y_emb: Tensor, hidden0: Tensor, memory: AttentionMemory
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Decode ``y_emb [B, T, E]`` from ``hidden0 [L, B, H]``.

        Returns ``(attn_hidden [B, T, H], hidden [L, B, H], weights [B, T, Tsrc],
        states [B, T, H])`` where ``states`` are the top-layer GRU outputs.
        """
        states, hidden = self.gru(y_emb, hidden0.contiguous())
        attn_hidden, weights = self._attend(states, memory)
        return attn_hidden, hidden, weights, states

    def _attend(self, states: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        """GRU outputs ``[B, T, H]`` -> ``(tanh(W_c [h; ctx]) [B, T, H], weights)``."""
        context, weights = self.attention(states, memory)
        return torch.tanh(self.combine(torch.cat([states, context], dim=-1))), weights

    def step(self, y_emb: Tensor, hidden: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        """One token: ``y_emb [B, E]``, ``hidden [L, B, H]`` -> ``(attn_hidden [B, H], hidden)``;
        equal to :meth:`forward` with ``T == 1`` in eval mode (no inter-layer dropout).

        An ONNX export traces :meth:`_export_step` instead."""
        if torch.onnx.is_in_onnx_export():
            return self._export_step(y_emb, hidden, memory)
        if type(self.gru) is nn.GRU:
            x, layers = y_emb, []
            for w_ih, w_hh, b_ih, b_hh in self.gru.all_weights:
                x = torch.gru_cell(x, hidden[len(layers)], w_ih, w_hh, b_ih, b_hh)
                layers.append(x)
            states, hidden = x.unsqueeze(1), torch.stack(layers)
        else:  # e.g. quantize_dynamic's GRU, which has no float weights to call cells with
            states, hidden = self.gru(y_emb.unsqueeze(1), hidden)
        attn_hidden, _ = self._attend(states, memory)
        return attn_hidden.squeeze(1), hidden

    def _export_step(
        self, y_emb: Tensor, hidden: Tensor, memory: AttentionMemory
    ) -> tuple[Tensor, Tensor]:
        """:meth:`step` as an ONNX export traces it, in few nodes: each node is one onnxruntime
        dispatch per token, most of a small model's step. One ``GRU`` node for all layers
        (each traced cell would be ~15 elementwise nodes), fed time-major (batch-first input
        traces as transposes around it); the attention kind traces its own scores (a dot
        product as ``q @ scorer + bias``: ``baddbmm`` traces two multiplications by 1); the
        combine on ``[B, 2H]`` rows (one ``Gemm``)."""
        gru = self.gru
        # nn.GRU.forward's own call, time-major: the export's one GRU node
        _, hidden = torch.gru(
            y_emb.unsqueeze(0), hidden, gru_weights(gru), gru.bias, gru.num_layers,
            0.0, False, False, False,
        )  # fmt: skip
        query = (hidden[-1:] if self.num_layers > 1 else hidden).transpose(0, 1)  # [B, 1, H]
        context, _ = self.attention(query, memory)
        both = torch.cat([query, context], dim=-1).squeeze(1)  # [B, 2H]
        return torch.tanh(self.combine(both)), hidden
