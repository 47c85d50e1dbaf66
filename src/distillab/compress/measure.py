"""What a compressed run reports: parameter counts, bytes on disk, batch-1 decode latency."""

from __future__ import annotations

import gzip
import io
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

EMBEDDING_PREFIXES = ("embedding.", "out_bias", "out.")  # vocabulary-sized tensors


def param_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of a float model in all, nonzero, and outside the vocabulary-sized tensors
    (the embedding, the untied output layer, the output bias), which dominate a small
    student. Pruning masks must be folded (:func:`~distillab.compress.pruning.fold`)."""
    total = nonzero = non_emb = 0
    for name, t in model.named_parameters():
        total += t.numel()
        nonzero += int((t != 0).sum())
        if not name.startswith(EMBEDDING_PREFIXES):
            non_emb += t.numel()
    return {"total": total, "nonzero": nonzero, "non_embedding": non_emb}


def serialized_bytes(model: nn.Module, compressed: bool = False) -> int:
    """Bytes of ``torch.save(model.state_dict())``; ``compressed``: gzip-ed (level 9), so the
    zeros of a pruned model take (almost) no room."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    data = buf.getvalue()
    return len(gzip.compress(data, 9, mtime=0)) if compressed else len(data)


def median_ms(decode: Callable[[Tensor, Tensor], object], inputs: Sequence[tuple], warmup: int = 2):
    """Median wall ms of ``decode(src, mask)`` over ``inputs`` (each batch 1), after
    ``warmup`` untimed decodes of the first one."""
    for _ in range(warmup):
        decode(*inputs[0])
    times = []
    for src, mask in inputs:
        t0 = time.perf_counter()
        decode(src, mask)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)
