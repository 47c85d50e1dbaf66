"""A fixed-size byte record per token: a few raw byte fields, then groups of fixed-width
unsigned integers stored as bit planes. Packed with NumPy when a cache is written; unpacked on
a whole batch when it is read, by a table lookup per plane byte (no loop per token).

A group of `count` values of `width` bits takes `width * ceil(count / 8)` bytes: plane `j`
holds bit `j` of every value (little-endian bit order), so unpacking a batch is `width`
vectorised table lookups and shift-ors over its bytes, whatever the width. Little-endian
machines only (the uint64 lanes are read back as bytes).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

MAX_WIDTH = 31  # values are rebuilt in int32


def plane_bytes(count: int, width: int) -> int:
    return width * -(-count // 8)


class Record:
    """`raw`: (name, bytes) fields copied as they are; `groups`: (name, count, width) fields
    of unsigned integers, in that order."""

    def __init__(self, raw: Sequence[tuple[str, int]], groups: Sequence[tuple[str, int, int]]):
        for name, count, width in groups:
            if not 1 <= width <= MAX_WIDTH or count < 0:
                raise ValueError(f"{name}: {count} values of {width} bits is not a bit group")
        self.raw, self.groups = list(raw), [g for g in groups if g[1] > 0]
        self.nbytes = sum(n for _, n in self.raw) + sum(
            plane_bytes(c, w) for _, c, w in self.groups
        )

    def pack(self, raw: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> np.ndarray:
        """[N, nbytes] uint8 from raw byte fields ([N, bytes] uint8) and groups' values
        ([N, count] ints in [0, 2**width)); a value that does not fit is an error."""
        parts = [np.ascontiguousarray(raw[name]).view(np.uint8) for name, _ in self.raw]
        for name, count, width in self.groups:
            v = np.asarray(values[name], dtype=np.int64)
            if v.shape[1] != count:
                raise ValueError(f"{name}: {v.shape[1]} values per token, expected {count}")
            if v.size and (v.min() < 0 or v.max() >= 1 << width):
                raise ValueError(f"{name}: a value of {v.min()}..{v.max()} exceeds {width} bits")
            planes = ((v[:, None, :] >> np.arange(width)[:, None]) & 1).astype(np.uint8)
            parts.append(np.packbits(planes, axis=-1, bitorder="little").reshape(len(v), -1))
        return np.concatenate(parts, 1)

    def unpack(self, records: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Tensor]]:
        """Raw fields ([N, bytes] uint8, NumPy) and groups' values ([N, count] int32, torch)."""
        if sys.byteorder != "little":
            raise NotImplementedError("bit-packed teacher caches are read on little-endian hosts")
        if records.ndim != 2 or records.shape[1] != self.nbytes:
            raise ValueError(f"records of shape {list(records.shape)}, expected [N, {self.nbytes}]")
        n, at, raw, values = len(records), 0, {}, {}
        for name, size in self.raw:
            raw[name], at = records[:, at : at + size], at + size
        for name, count, width in self.groups:
            size = plane_bytes(count, width)
            planes = records[:, at : at + size].reshape(n, width, -1)
            at += size
            values[name] = torch.from_numpy(unplane(planes)[:, :count])
        return raw, values


# byte b -> 8 byte lanes of a uint64, lane i holding bit i of b
SPREAD = np.array(
    [sum(((b >> i) & 1) << (8 * i) for i in range(8)) for b in range(256)], dtype=np.uint64
)


def unplane(planes: np.ndarray) -> np.ndarray:
    """Bit planes [N, width, bytes] -> values [N, 8 * bytes] int32: each plane byte spreads
    its 8 bits into 8 byte lanes of a uint64 by table lookup, 8 planes per lane byte, so the
    work is per byte of the record (8 values at a time), not per bit."""
    n, width, nbytes = planes.shape
    out = np.zeros((n, nbytes * 8), np.int32)
    for low in range(0, width, 8):
        lanes = np.zeros((n, nbytes), np.uint64)
        for j in range(low, min(low + 8, width)):
            lanes |= SPREAD[planes[:, j]] << np.uint64(j - low)
        out |= lanes.view(np.uint8).reshape(n, -1).astype(np.int32) << low
    return out
