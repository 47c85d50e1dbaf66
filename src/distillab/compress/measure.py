"""What a compressed run reports: parameter counts, bytes on disk, batch-1 decode latency."""

from __future__ import annotations

import gzip
import io
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from distillab.compress.pruning import prunable

EMBEDDING_PREFIXES = ("embedding.", "out_bias", "out.")  # vocabulary-sized tensors


def param_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of a float model in all, nonzero, and outside the vocabulary-sized tensors
    (the embedding, the untied output layer, the output bias: named so, or with the model's
    `vocab_size` rows, as a transformer's token embeddings), which dominate a small student.
    Pruning masks must be folded (:func:`~distillab.compress.pruning.fold`)."""
    total = nonzero = non_emb = 0
    vocab = getattr(model, "vocab_size", None)
    for name, t in model.named_parameters():
        total += t.numel()
        nonzero += int((t != 0).sum())
        if not (name.startswith(EMBEDDING_PREFIXES) or (t.dim() and t.size(0) == vocab)):
            non_emb += t.numel()
    return {"total": total, "nonzero": nonzero, "non_embedding": non_emb}


@torch.no_grad()
def sparsity(
    before: nn.Module, after: nn.Module, embeddings: bool = False
) -> tuple[float, dict[str, float]]:
    """(overall, per tensor) sparsity of ``after``'s prunable tensors against ``before``'s: zeros
    and removed weights (structured pruning shrinks tensors) over the original count, read from
    the weights the model computes with (masked ones while masks are on)."""
    old = {q: getattr(m, n).numel() for m, n, q in prunable(before, embeddings)}
    kept = {q: int((getattr(m, n) != 0).sum()) for m, n, q in prunable(after, embeddings)}
    by_layer = {q: 1.0 - kept.get(q, 0) / n for q, n in old.items()}
    return 1.0 - sum(kept.values()) / max(sum(old.values()), 1), by_layer


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
