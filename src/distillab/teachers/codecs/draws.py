"""Systematic draws from a teacher's tail (the cache's default sampler, `Codec.sample`)."""

from __future__ import annotations

import torch


def add_tail_draws(
    log_probs: torch.Tensor,
    top_v: torch.Tensor,
    top_i: torch.Tensor,
    n: int,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append `n` draws (sorted by id, repeats adjacent) from the (softened) teacher
    distribution outside its top-k, by systematic sampling: one uniform offset per token and
    `n` evenly spaced points on the tail's CDF. Each draw is still marginally a draw from the
    tail (a token of tail share q is drawn n*q times in expectation, so the KD target stays
    unbiased), but the counts vary far less than `n` independent draws: a token whose share is
    above 1/n is always drawn floor or ceil of n*q times."""
    vocab = log_probs.shape[-1]
    # a tiny floor keeps rows whose tail underflowed to 0 drawable; such draws weigh ~0
    tail = (log_probs.exp() + 1e-30).scatter(-1, top_i, 0.0).reshape(-1, vocab)
    cdf = tail.double().cumsum(-1)
    u = torch.rand(len(cdf), 1, generator=gen, dtype=torch.float64)
    points = (u + torch.arange(n, dtype=torch.float64)) / n * cdf[:, -1:]
    drawn = torch.searchsorted(cdf, points, right=True).clamp(max=vocab - 1)
    drawn = drawn.view(*top_i.shape[:-1], n)  # ascending: repeated draws are adjacent
    drawn_v = log_probs.gather(-1, drawn)
    return torch.cat([top_v, drawn_v], -1), torch.cat([top_i, drawn], -1)
