r"""A compact codec: one bit-packed record per token, under 100 bytes at top-24 + 16 draws for
vocabularies up to 16k tokens (89 B at 4k).

A record holds the top log-probability as fp16, then every other stored log-probability as a
level on a grid below it, and the ids in ``ceil(log2 vocab)`` bits each:

- top column ``j > 0``: ``lp_1 - level_j * step`` (``value_bits`` per level; ``step`` an 8-bit
  code, ``2^{c/8 - 16}``, fitted per token so that the top-k spans the levels);
- tail draw: ``floor - level * step_t`` with ``floor`` the grid's lowest top level
  (``tail_value_bits`` per level, its own fitted step). The tail values only weigh the draws
  when the distillation temperature leaves the cache's (a temperature schedule); at the
  softening temperature the draws share the tail mass equally and their values are unused.

Levels are rounded stochastically in probability space (seeded by the cache key): a value
between levels ``a < b`` is stored as ``b`` with probability ``(e^{-a s} - e^{-g})/(e^{-a s}
- e^{-b s})``, so the decoded probability ``\hat p_j`` has expectation ``p_j`` exactly. The
tail mass the loss derives, ``1 - \sum_{top} \hat p_j``, is linear in them, so the cached KD
gradient stays unbiased at the softening temperature: quantisation adds variance, not bias,
except (1) the fp16 rounding of ``lp_1`` (relative error <= 2^-11 |lp_1|) and (2) values above
``lp_1``'s fp16 (near-ties with the top token) clamped to it. Away from the softening
temperature (``p^r``, ``r != 1``) the estimator was biased already and rounding adds to that.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from distillab.errors import ConfigError
from distillab.teachers.codecs.base import Codec, Layout
from distillab.teachers.codecs.bits import Record

MAX_GAP = 1e4  # log-probabilities this far below the grid floor are clamped (weigh nothing)


def step_of(code: Tensor) -> Tensor:
    """The grid step a code stands for (code 0: a zero step, all values equal)."""
    return torch.where(code > 0, torch.exp2(code.float() / 8 - 16), 0.0)


def quantise(gaps: Tensor, bits: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Gaps below a base value (>= 0, [N, m]) -> (levels [N, m], step codes [N]): the smallest
    step code whose grid of 2^bits levels covers the row, levels rounded stochastically so that
    E[exp(-level * step)] = exp(-gap)."""
    top = (1 << bits) - 1
    need = gaps.amax(1) / top if gaps.shape[1] else gaps.new_zeros(gaps.shape[0])
    code = torch.ceil((torch.log2(need.clamp(min=2.0**-16)) + 16) * 8).clamp(1, 255)
    code = torch.where(need > 0, code, 0.0).long()
    step = step_of(code)[:, None]
    x = torch.where(step > 0, gaps / step.clamp(min=1e-30), 0.0)
    lo = x.floor().clamp(0, top)
    hi = (lo + 1).clamp(max=top)
    # P(hi) = (e^{-lo s} - e^{-g}) / (e^{-lo s} - e^{-hi s}), written with expm1 for precision
    num = -torch.expm1(-(gaps - lo * step).clamp(min=0))
    den = -torch.expm1(-(hi - lo) * step)
    p_up = torch.where(den > 0, num / den.clamp(min=1e-30), 0.0).clamp(0, 1)
    u = torch.rand(gaps.shape, generator=gen, dtype=gaps.dtype)
    return (lo + (u < p_up).to(lo.dtype)).long(), code


class Compact(Codec):
    """`value_bits` per top log-probability level (the top one is fp16), `tail_value_bits` per
    tail draw's level; ids packed in `ceil(log2 vocab)` bits."""

    def __init__(self, value_bits: int = 6, tail_value_bits: int = 4) -> None:
        for name, bits in (("value_bits", value_bits), ("tail_value_bits", tail_value_bits)):
            if not 1 <= bits <= 16:
                raise ConfigError(f"distill.codec.{name}={bits} must be in [1, 16]")
        self.value_bits, self.tail_value_bits = value_bits, tail_value_bits
        self.records: dict[Layout, Record] = {}

    def params(self) -> dict:
        return {"value_bits": self.value_bits, "tail_value_bits": self.tail_value_bits}

    def record(self, layout: Layout) -> Record:
        """lp_1 (fp16) and the two step codes raw, then top levels, tail levels and ids."""
        if layout not in self.records:
            k, s = layout.k, layout.tail_samples
            self.records[layout] = Record(
                [("lp1", 2), ("codes", 2)],
                [
                    ("top", k - 1, self.value_bits),
                    ("tail", s, self.tail_value_bits),
                    ("ids", k + s, layout.id_bits),
                ],
            )
        return self.records[layout]

    def arrays(self, layout: Layout) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        return {"records": (np.dtype(np.uint8), (self.record(layout).nbytes,))}

    def encode(
        self, values: Tensor, ids: Tensor, layout: Layout, gen: torch.Generator
    ) -> dict[str, np.ndarray]:
        k = layout.k
        values = values.float()
        lp1 = values[:, 0].half()
        base = lp1.float()
        top, top_code = quantise(
            (base[:, None] - values[:, 1:k]).clamp(min=0), self.value_bits, gen
        )
        floor = base - ((1 << self.value_bits) - 1) * step_of(top_code)
        tail_gaps = (floor[:, None] - values[:, k:]).clamp(0, MAX_GAP)
        tail, tail_code = quantise(tail_gaps, self.tail_value_bits, gen)
        raw = {
            "lp1": lp1.numpy().astype("<f2").view(np.uint8).reshape(-1, 2),
            "codes": torch.stack([top_code, tail_code], 1).numpy().astype(np.uint8),
        }
        groups = {"top": top.numpy(), "tail": tail.numpy(), "ids": ids.numpy()}
        return {"records": self.record(layout).pack(raw, groups)}

    def decode(self, arrays: dict[str, np.ndarray], layout: Layout) -> tuple[Tensor, Tensor]:
        raw, f = self.record(layout).unpack(arrays["records"])
        base = torch.from_numpy(np.ascontiguousarray(raw["lp1"]).view("<f2")).float()  # [N, 1]
        step = step_of(torch.from_numpy(raw["codes"].astype(np.int64)))  # [N, 2]
        k, s = layout.k, layout.tail_samples
        top = base - f["top"] * step[:, :1] if k > 1 else base[:, :0]
        floor = base - ((1 << self.value_bits) - 1) * step[:, :1]
        tail = floor - f["tail"] * step[:, 1:] if s else base[:, :0]
        return torch.cat([base, top, tail], 1), f["ids"].long()
