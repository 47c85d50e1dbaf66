"""Padding-invariant (bi)GRU encoder built from single-layer GRUs.

Why not ``nn.GRU(num_layers=..., bidirectional=True)``? Two reasons:

* a stack of single-layer GRUs lets us add residual connections between layers;
* a fused bidirectional GRU reads the right padding when running backwards, so outputs would
  depend on how much padding a batch has. Packed sequences fix that but are slow on CPU.
  Instead the backward direction reverses every sequence *within its own length* (pads stay
  where they are), runs an ordinary forward GRU and un-reverses the result. Since padding is
  always on the right, a forward GRU never sees a pad before a real token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from distillab.models.rnn import gru_weights


def reverse_index(lengths: Tensor, max_len: int) -> Tensor:
    """Index ``[B, T]`` mapping t -> len-1-t for t < len and t -> t for pads (an involution)."""
    pos = torch.arange(max_len, device=lengths.device).unsqueeze(0)  # [1, T]
    lens = lengths.unsqueeze(1)  # [B, 1]
    return torch.where(pos < lens, lens - 1 - pos, pos)


def reverse_within_length(x: Tensor, index: Tensor) -> Tensor:
    """Reverse ``x [B, T, D]`` along time inside each sequence's valid prefix."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def gather_last(x: Tensor, lengths: Tensor) -> Tensor:
    """``x[b, len_b - 1]`` for each row -> ``[B, D]`` (position 0 for empty rows)."""
    idx = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, x.size(-1))
    return x.gather(1, idx).squeeze(1)


class GRUEncoder(nn.Module):
    """Multi-layer (bi)GRU encoder whose valid outputs and final states ignore right padding.

    Every layer outputs ``hidden_size`` features (each direction gets ``hidden_size // 2`` units
    when bidirectional), so residual connections are shape-compatible from layer 2 on.
    """

    def __init__(
        self,
        emb_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if bidirectional:
            assert hidden_size % 2 == 0, "hidden_size must be even for a bidirectional encoder"
        self.emb_dim = emb_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.residual = residual
        units = hidden_size // 2 if bidirectional else hidden_size
        self.fwd = nn.ModuleList()
        self.bwd = nn.ModuleList()
        for layer in range(num_layers):
            in_size = emb_dim if layer == 0 else hidden_size
            self.fwd.append(nn.GRU(in_size, units, batch_first=True))
            if bidirectional:
                self.bwd.append(nn.GRU(in_size, units, batch_first=True))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x_emb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode ``x_emb [B, T, E]`` with right-padding ``mask [B, T]`` (True = real token).

        Returns ``(outputs [B, T, H] with pads zeroed, final [num_layers, B, H])``.
        An ONNX export traces :meth:`_export_forward` instead.
        """
        if torch.onnx.is_in_onnx_export():
            return self._export_forward(x_emb, mask)
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        keep = mask.unsqueeze(-1).to(x_emb.dtype)
        rev_idx = reverse_index(lengths, x_emb.size(1)) if self.bidirectional else None
        x = x_emb
        finals: list[Tensor] = []
        for layer in range(self.num_layers):
            inp = x if layer == 0 else self.dropout(x)
            out_f, _ = self.fwd[layer](inp)
            final = gather_last(out_f, lengths)
            if self.bidirectional:
                assert rev_idx is not None
                out_r, _ = self.bwd[layer](reverse_within_length(inp, rev_idx))
                final = torch.cat([final, gather_last(out_r, lengths)], dim=-1)
                out = torch.cat([out_f, reverse_within_length(out_r, rev_idx)], dim=-1)
            else:
                out = out_f
            if self.residual and layer > 0:
                out = out + inp
            x = out * keep
            finals.append(final)
        return x, torch.stack(finals, dim=0)

    def _export_forward(self, x_emb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` (eval mode) as an ONNX export traces it: per layer, one ``GRU`` node
        for both directions that reads each row's length (ONNX's ``sequence_lens``: the reverse
        direction starts at a row's last real token, padded outputs are 0), where the eager
        reversal within each length traces as index arithmetic (a one-layer encoder graph: 124
        nodes that way, 49 this way). The packing is traced from a batch of one row, so the
        export does not sort rows: ONNX's GRU needs no order."""
        lengths = mask.bool().sum(dim=1)
        keep = mask.unsqueeze(-1).to(x_emb.dtype)
        x, finals = x_emb, []
        for layer in range(self.num_layers):
            grus = [self.fwd[layer], *([self.bwd[layer]] if self.bidirectional else [])]
            packed = pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=True)
            h0 = x.new_zeros(len(grus), x.size(0), grus[0].hidden_size)
            weights = [w for gru in grus for w in gru_weights(gru)]
            # nn.GRU.forward's own call on packed data, both directions' weights in one node
            data, final = torch.gru(
                packed.data, packed.batch_sizes, h0, weights, True, 1, 0.0, False, len(grus) == 2
            )
            out, _ = pad_packed_sequence(
                PackedSequence(data, packed.batch_sizes), total_length=x.size(1)
            )
            out = out.transpose(0, 1)
            if self.residual and layer > 0:
                out = out + x
            x = out * keep
            finals.append(torch.cat(list(final), dim=-1))
        return x, torch.stack(finals, dim=0)
