"""The uncompressed codec (the cache's layout up to format v3): fp16 log-probabilities and
int32 ids, 6 bytes per column (384 B per token at top-32 + 32 draws). Exact up to fp16
rounding; kept for comparison and for vocabularies a compact record cannot hold."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from distillab.teachers.codecs.base import Codec, Layout


class Exact(Codec):
    def params(self) -> dict:
        return {}

    def arrays(self, layout: Layout) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        return {
            "values": (np.dtype(np.float16), (layout.columns,)),
            "ids": (np.dtype(np.int32), (layout.columns,)),
        }

    def encode(
        self, values: Tensor, ids: Tensor, layout: Layout, gen: torch.Generator
    ) -> dict[str, np.ndarray]:
        return {"values": values.half().numpy(), "ids": ids.int().numpy()}

    def decode(self, arrays: dict[str, np.ndarray], layout: Layout) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(arrays["values"]), torch.from_numpy(arrays["ids"]).long()
