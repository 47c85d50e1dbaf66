"""Prunable unit groups of the transformer families: attention heads and feed-forward units.

A group is one layer's heads (their query/key/value rows and output-projection columns) or one
layer's feed-forward units (the inner layer's rows and the outer layer's columns). `keep(index)`
replaces the group's layers by smaller ones holding the chosen units only, so the model really
shrinks; `unit_weights()` lists, per unit, every weight that belongs to it (what a pruning
method ranks). The transformers attention modules reshape by `head_dim` with `-1` heads, so
fewer query/key/value rows are fewer heads. A family lists its groups (`HFModel.unit_groups`);
a checkpoint of a shrunk model records the kept counts (`kept_units`), which rebuild the
shapes before its weights are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D, prune_linear_layer


def out_features(layer: nn.Module) -> int:
    return layer.weight.size(1 if isinstance(layer, Conv1D) else 0)


def rows(layer: nn.Module) -> Tensor:
    """The weight as ``[out, in]`` (a GPT-2 ``Conv1D`` stores ``[in, out]``)."""
    return layer.weight.t() if isinstance(layer, Conv1D) else layer.weight


def select(layer: nn.Module, index: Tensor, outputs: bool) -> nn.Module:
    """``layer`` keeping the output features (``outputs``) or input features ``index``."""
    if isinstance(layer, Conv1D):
        w = layer.weight.index_select(1 if outputs else 0, index).detach().clone()
        new = Conv1D(w.size(1), w.size(0)).to(w.device)
        with torch.no_grad():
            new.weight.copy_(w)
            new.bias.copy_(layer.bias[index] if outputs else layer.bias)
        return new
    return prune_linear_layer(layer, index, dim=0 if outputs else 1)


def head_index(heads: Tensor, head_dim: int, blocks: int = 1, width: int = 0) -> Tensor:
    """Feature indices of ``heads`` in each of ``blocks`` stacked ``width``-wide blocks."""
    per = (heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
    return torch.cat([per + b * width for b in range(blocks)])


@dataclass
class Heads:
    """The heads of one attention module: separate query/key/value projections (`q`, `k`,
    `v`, BART) or one fused `qkv` projection (GPT-2's `c_attn`, split at `split_size`); `o`
    reads the heads' outputs."""

    attn: nn.Module
    q: str
    k: str | None
    v: str | None
    o: str
    head_dim: int

    @property
    def size(self) -> int:
        o = getattr(self.attn, self.o)
        return rows(o).size(1) // self.head_dim

    def unit_weights(self) -> list[Tensor]:
        width, d = self.size * self.head_dim, self.head_dim
        parts = [rows(getattr(self.attn, n)) for n in (self.q, self.k, self.v) if n]
        if self.k is None:  # fused: [3 * width, in] as 3 blocks
            parts = list(parts[0].view(3, width, -1))
        per_head = [p.reshape(self.size, d * p.size(1)) for p in parts]
        o = rows(getattr(self.attn, self.o))  # [out, width]
        per_head.append(o.t().reshape(self.size, d * o.size(0)))
        return per_head

    def keep(self, heads: Tensor) -> None:
        width = self.size * self.head_dim
        if self.k is None:
            idx = head_index(heads, self.head_dim, 3, width)
            setattr(self.attn, self.q, select(getattr(self.attn, self.q), idx, True))
            self.attn.split_size = len(heads) * self.head_dim  # GPT-2 splits c_attn's output
        else:
            idx = head_index(heads, self.head_dim)
            for name in (self.q, self.k, self.v):
                setattr(self.attn, name, select(getattr(self.attn, name), idx, True))
        idx = head_index(heads, self.head_dim)
        setattr(self.attn, self.o, select(getattr(self.attn, self.o), idx, False))
        self.attn.num_heads = len(heads)


@dataclass
class FeedForward:
    """One layer's feed-forward pair: `inner` (hidden -> units) and `outer` (units -> hidden)
    attributes of `owner`."""

    owner: nn.Module
    inner: str
    outer: str

    @property
    def size(self) -> int:
        return out_features(getattr(self.owner, self.inner))

    def unit_weights(self) -> list[Tensor]:
        return [rows(getattr(self.owner, self.inner)), rows(getattr(self.owner, self.outer)).t()]

    def keep(self, units: Tensor) -> None:
        setattr(self.owner, self.inner, select(getattr(self.owner, self.inner), units, True))
        setattr(self.owner, self.outer, select(getattr(self.owner, self.outer), units, False))


UnitGroup = Heads | FeedForward


def apply_kept(groups: list[UnitGroup], kept: list[int]) -> None:
    """Shrink each group to its first ``kept[i]`` units: the shapes a shrunk checkpoint's
    weights need (their values come from the checkpoint)."""
    if len(kept) != len(groups):
        raise ValueError(
            f"model.kept_units has {len(kept)} entries; this model has {len(groups)} unit "
            "groups (heads and feed-forward units per layer)"
        )
    for group, n in zip(groups, kept, strict=True):
        if not 0 < n <= group.size:
            raise ValueError(f"model.kept_units: {n} is not in [1, {group.size}]")
        if n < group.size:
            group.keep(torch.arange(n))
