"""What every attention plug-in shares: the memory a decoder reads per step and the base class.

An attention is split in two so that decoding stays cheap: :meth:`Attention.precompute` runs
once per batch on the encoder states (key projections, the padding mask as a bias) and returns
an :class:`AttentionMemory` of three tensors; :meth:`Attention.forward` scores a query against
it. The ONNX export passes those three tensors from the encoder graph to the step graph, so a
new kind exports as long as its memory is three tensors with the batch on axis 0.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from distillab.data.turns import SourceTurns


class AttentionMemory(NamedTuple):
    """What every query of a batch attends to, prepared once by :meth:`Attention.precompute`:
    a decoder step then scores with one fused op instead of re-projecting and re-masking."""

    values: Tensor  # [B, Tk, Hv] what contexts are weighted means of
    scorer: Tensor  # the precomputed key side of the scores (its layout is the kind's own)
    bias: Tensor  # [B, 1, Tk] 0 on real keys, the dtype's min on masked ones

    def index_select(self, index: Tensor) -> AttentionMemory:
        """Rows ``index`` of every part (e.g. each row repeated for beam search's ``B*K``)."""
        return AttentionMemory(*(t.index_select(0, index) for t in self))


def mask_bias(key_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, 1, Tk]``: 0 on real keys, ``finfo.min`` on masked ones.

    finfo.min rather than -inf: exp underflows to exactly 0 for masked keys whenever a row has
    a valid key, and a fully masked row yields uniform weights instead of NaN (any realistic
    score plus min rounds to min itself)."""
    bias = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
    return bias.masked_fill(~key_mask.bool(), torch.finfo(dtype).min).unsqueeze(1)


class Attention(nn.Module):
    """The plug-in interface: ``precompute(keys, key_mask, turns) -> AttentionMemory`` and
    ``forward(query, memory) -> (context [B, Tq, Hk], weights [B, Tq, Tk])`` whose weight rows
    sum to 1 with exactly 0 on masked keys. A subclass registers under a name
    (:func:`distillab.models.attention.registry.register`); the keyword arguments of its
    constructor after ``query_size, key_size`` are its options, set as
    ``model.attention_<option>``."""

    kind: ClassVar[str] = ""  # the registered name (set by `register`)
    reads_turns: ClassVar[bool] = False  # precompute needs the source's `SourceTurns`
    scorer_src_axis: ClassVar[int] = 2  # the axis of `AttentionMemory.scorer` over keys

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size

    @classmethod
    def check(cls, query_size: int, key_size: int, **options: object) -> None:
        """Raise ValueError (naming ``attention_<option>``) for options this kind refuses;
        called by the config check before any work and by the constructor."""

    def precompute(
        self, keys: Tensor, key_mask: Tensor, turns: SourceTurns | None = None
    ) -> AttentionMemory:
        raise NotImplementedError

    def forward(self, query: Tensor, memory: AttentionMemory) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def dot_scores(query: Tensor, memory: AttentionMemory) -> Tensor:
    """``query [B, Tq, H] @ scorer [B, H, Tk] + bias``: ``baddbmm`` eagerly (one fused op),
    a ``MatMul`` and an ``Add`` in an ONNX export (``baddbmm`` traces two multiplications by 1)."""
    if torch.onnx.is_in_onnx_export():
        return torch.matmul(query, memory.scorer) + memory.bias
    return torch.baddbmm(memory.bias, query, memory.scorer)
