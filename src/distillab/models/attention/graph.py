"""Graph attention over the context's turns, modulating multiplicative token attention.

The turns of the source are the nodes of a graph (a turn's vector: the mean of its encoder
states); edges join adjacent turns and turns of the same speaker (and each turn to itself). One
graph-attention layer (GAT, Velickovic et al. 2018: a masked softmax over each node's
neighbours) mixes the turn vectors, and each mixed turn ``i`` gets a key ``c_i``. A query's
weight of turn ``i`` is ``beta_i = softmax_i(q . c_i)`` over the row's real turns, and the
token weights are the multiplicative ones modulated by their turn's weight, renormalised:

    w_j  ∝  exp(q . W k_j) * beta_turn(j)  =  softmax_j(q . W k_j + log beta_turn(j))

Since ``log beta_i = q . c_i - logsumexp(q . c)`` and the logsumexp is the same for every token
of a row, the renormalised weights equal ``softmax_j(q . (W k_j + c_turn(j)))``: each token's
key gains its turn's key. That is how it is computed (``precompute`` adds ``c_turn(j)`` to the
token keys once per batch), so a decoder step costs what a multiplicative one does and the
memory is the multiplicative memory (it exports the same way; the turns come from the speaker
markers in the source, see :mod:`distillab.data.turns`). :meth:`turn_keys` exposes ``c`` so that
the two forms can be checked against each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distillab.data.turns import SourceTurns
from distillab.models.attention.base import Attention, AttentionMemory, dot_scores, mask_bias
from distillab.models.attention.registry import register


def turn_adjacency(speaker: Tensor) -> Tensor:
    """``[B, N, N]`` bool: real turns ``i, j`` that are adjacent (``|i - j| <= 1``, so each
    turn is its own neighbour) or spoken by the same speaker; padded turns (speaker -1) have
    no edge."""
    n = speaker.size(1)
    idx = torch.arange(n, device=speaker.device)
    near = (idx.view(-1, 1) - idx.view(1, -1)).abs() <= 1
    real = speaker >= 0
    same = speaker.unsqueeze(2) == speaker.unsqueeze(1)
    return (near.unsqueeze(0) | same) & real.unsqueeze(2) & real.unsqueeze(1)


def turn_membership(turns: SourceTurns, dtype: torch.dtype) -> Tensor:
    """``[B, N, Ts]``: 1 where token ``j`` belongs to turn ``i`` (pads belong to none)."""
    n = turns.speaker.size(1)
    ids = torch.arange(n, device=turns.speaker.device).view(1, -1, 1)
    return (turns.token_turn.unsqueeze(1) == ids).to(dtype)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis where ``mask``; masked entries get exactly 0 (a row with
    nothing allowed is uniform, never NaN)."""
    low = torch.finfo(scores.dtype).min
    return torch.softmax(scores.masked_fill(~mask, low), dim=-1)


@register("graph")
class GraphTurnAttention(Attention):
    """Multiplicative token attention whose turns are weighted by a one-layer GAT over the
    turn graph (see the module docstring for the equivalence it computes with)."""

    reads_turns = True

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__(query_size, key_size)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)
        self.node_proj = nn.Linear(key_size, key_size, bias=False)  # GAT's W
        self.edge_src = nn.Linear(key_size, 1, bias=False)  # GAT's a, split in its two halves
        self.edge_dst = nn.Linear(key_size, 1, bias=False)
        self.turn_proj = nn.Linear(key_size, query_size, bias=False)  # c_i = W_t g_i

    def turn_vectors(self, keys: Tensor, turns: SourceTurns) -> tuple[Tensor, Tensor]:
        """(``[B, N, Hk]`` each turn's mean encoder state, ``[B, N, Ts]`` the membership)."""
        member = turn_membership(turns, keys.dtype)
        counts = member.sum(-1, keepdim=True).clamp(min=1.0)
        return torch.matmul(member, keys) / counts, member

    def graph_layer(self, nodes: Tensor, adjacency: Tensor) -> Tensor:
        """One GAT layer with a residual: ``g_i = h_i + ELU(sum_j alpha_ij W h_j)``,
        ``alpha_i = softmax_j(LeakyReLU(a^T [W h_i; W h_j]))`` over ``i``'s neighbours."""
        wh = self.node_proj(nodes)  # [B, N, Hk]
        logits = F.leaky_relu(self.edge_src(wh) + self.edge_dst(wh).transpose(1, 2), 0.2)
        alpha = masked_softmax(logits, adjacency)  # [B, N, N]
        return nodes + F.elu(torch.matmul(alpha, wh))

    def turn_keys(self, keys: Tensor, turns: SourceTurns) -> tuple[Tensor, Tensor]:
        """(``c [B, N, Hq]`` the turns' keys after the graph layer, membership ``[B, N, Ts]``)."""
        nodes, member = self.turn_vectors(keys, turns)
        mixed = self.graph_layer(nodes, turn_adjacency(turns.speaker))
        return self.turn_proj(mixed), member

    def precompute(
        self, keys: Tensor, key_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        if turns is None:
            raise ValueError(
                "attention=graph reads the source's turns: pass turns=source_turns(...) "
                "(Seq2Seq derives them from the speaker markers when it knows their ids)"
            )
        c, member = self.turn_keys(keys, turns)
        token_keys = self.key_proj(keys) + torch.matmul(member.transpose(1, 2), c)  # [B, Ts, Hq]
        scorer = token_keys.transpose(1, 2).contiguous()
        return AttentionMemory(keys, scorer, mask_bias(key_mask, keys.dtype))

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(dot_scores(query, memory), dim=-1)
        return torch.matmul(weights, memory.values), weights
