"""Reading the student's [tokens, vocab] log-probabilities at a few columns and along a few
dense vectors in one autograd op.

The losses of a step read the log-probabilities at the gold tokens (cross-entropy), at a
cached teacher's stored ids (sparse KD) and, for the control-variate cache, along a prior over
the vocabulary (a dense dot product). Separately, each read's backward writes its own
[tokens, vocab] gradient and autograd adds them up: for a small model those writes cost as
much as the rest of its loss. `read_log_probs` writes the gradient once: the dense reads'
outer product, then the columns' gradients scattered into it.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _Read(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_probs: Tensor, ids: Tensor, vectors: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(ids, vectors)
        return log_probs.gather(-1, ids), log_probs @ vectors.T

    @staticmethod
    def backward(ctx, grad_cols: Tensor, grad_dots: Tensor) -> tuple[Tensor, None, None]:
        ids, vectors = ctx.saved_tensors
        grad = grad_dots @ vectors  # [N, vocab], the one full-size write
        return grad.scatter_add_(-1, ids, grad_cols), None, None


def read_log_probs(
    log_probs: Tensor, ids: Tensor, vectors: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """`log_probs` [..., V] gathered at `ids` [..., C] and, when `vectors` [D, V] are given,
    dotted with each of them ([..., D]; else None). The same values and gradients as
    `gather` and `@`, with one [..., V] gradient written instead of one per read."""
    if vectors is None:
        return log_probs.gather(-1, ids), None
    lead, vocab = log_probs.shape[:-1], log_probs.shape[-1]
    cols, dots = _Read.apply(
        log_probs.reshape(-1, vocab),
        ids.reshape(-1, ids.shape[-1]),
        vectors.to(log_probs.dtype),
    )
    return cols.reshape(*lead, -1), dots.reshape(*lead, -1)
