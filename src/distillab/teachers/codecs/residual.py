r"""A control-variate codec: the tail as a dense guess from a cache-wide prior plus draws of
what the guess misses (`losses.residual.residual_kd_loss` reads it).

The compact codec's draws share the tail mass ``m`` equally, so their noise scales with ``m``,
which a high temperature makes large; the draws are fixed in the cache and every epoch trains
on the same noise. Here the tail is split into a guess ``c_v = \lambda m \pi_v / \Pi`` (``\pi``
the mean of the tokens' tail distributions p_tail / m over the training targets, stored once per
cache, ``\Pi`` its mass outside the token's top-k, ``\lambda`` a per-token scale fitted when
the cache is built) and a residual ``d = p_{tail} - c``. The ``S`` draws are systematic draws
from ``|d| / |d|_1``, each of weight ``sign(d_v) |d|_1 / S``, so one sign bit per draw stores
its weight; ``E[t] = top + c + d = p`` exactly, with variance ``\sum_v (|d|_1/S)^2 f_v(1 -
f_v)``, ``f_v = frac(S |d_v| / |d|_1)`` (``m^2`` in place of ``|d|_1^2`` for plain draws).
``\lambda`` (16 levels in [0, 1.5], one byte) minimises that variance per token.

Record: ``lp_1`` fp16, the top grid's step code (`compact.quantise`), ``\lambda``'s code,
``|d|_1`` fp16 stochastically rounded (unbiased: the weights are linear in it), the tail's
``\sum p \log p`` fp16 (the KD value only, no gradient), then the top-k's levels, the draws'
sign bits and all ids. Bias: the top's fp16 ``lp_1`` as in the compact codec; nothing else
(``\lambda`` is a function of ``p``, not of the draws). The draws carry no probabilities, so a
temperature schedule (importance weights ``p^{r-1}``) cannot reweight them: refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import Tensor

from distillab.errors import ConfigError
from distillab.losses.residual import residual_kd_loss
from distillab.teachers.codecs.base import Codec, Layout, Passes
from distillab.teachers.codecs.bits import Record
from distillab.teachers.codecs.compact import quantise, step_of

LAMBDAS = torch.linspace(0.0, 1.5, 16, dtype=torch.float64)  # the per-token scale's levels
EXTRA = 2  # decoded per-token columns after the draws: lambda, tail entropy term


def fp16_stochastic(x: Tensor, gen: torch.Generator) -> Tensor:
    """x >= 0 (float) -> fp16 with E[result] = x (between the two nearest fp16 values)."""
    h = x.half()
    lo = torch.where(h.float() > x, torch.nextafter(h, torch.zeros_like(h)), h)
    hi = torch.nextafter(lo, torch.full_like(lo, float("inf")))
    gap = (hi.float() - lo.float()).clamp(min=1e-30)
    up = torch.rand(x.shape, generator=gen) < ((x - lo.float()) / gap).clamp(0, 1)
    return torch.where(up, hi, lo)


def residual_draws(
    p_tail: Tensor, guess: Tensor, s: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """[N, V] tail probabilities (top-k zeroed) and the lam=1 guess -> (lambda codes [N],
    draws [N, s] sorted, their signs [N, s] in {0: -, 1: +}, |d|_1 [N]) for the lambda of
    least systematic-draw variance."""
    best, best_var = torch.zeros(len(p_tail), dtype=torch.long), None
    p32, g32 = p_tail.float(), guess.float()  # the search in float32 (the draws in float64)
    for i, lam in enumerate(LAMBDAS.tolist()):
        d = (p32 - lam * g32).abs()
        l1 = d.sum(-1, keepdim=True)
        x = s * d / l1.clamp(min=1e-300)
        f = x - x.floor()
        var = (l1 / s).square().squeeze(-1) * (f * (1 - f)).sum(-1)
        if best_var is None or i == 0:
            best_var = var
        better = var < best_var
        best, best_var = torch.where(better, i, best), torch.minimum(var, best_var)
    d = p_tail - LAMBDAS[best][:, None] * guess
    cdf = d.abs().cumsum(-1)
    l1 = cdf[:, -1:]
    u = torch.rand(len(cdf), 1, generator=gen, dtype=torch.float64)
    points = (u + torch.arange(s, dtype=torch.float64)) / s * l1
    drawn = torch.searchsorted(cdf, points, right=True).clamp(max=p_tail.shape[-1] - 1)
    signs = (d.gather(-1, drawn) >= 0).long()
    return best, drawn, signs, l1.squeeze(-1)


class Residual(Codec):
    """`value_bits` per top log-probability level; draws as ids and sign bits around a guess
    from the cache-wide prior (`global_prior.npy`, fp32 [vocab])."""

    global_names = ("prior",)
    reweights = False  # the draws hold no probabilities: no temperature schedule

    def __init__(self, value_bits: int = 6) -> None:
        if not 1 <= value_bits <= 16:
            raise ConfigError(f"distill.codec.value_bits={value_bits} must be in [1, 16]")
        self.value_bits = value_bits
        self.records: dict[Layout, Record] = {}

    def params(self) -> dict:
        return {"value_bits": self.value_bits}

    def record(self, layout: Layout) -> Record:
        if layout not in self.records:
            k, s = layout.k, layout.tail_samples
            self.records[layout] = Record(
                [("lp1", 2), ("code", 1), ("lam", 1), ("l1", 2), ("ent", 2)],
                [("top", k - 1, self.value_bits), ("signs", s, 1), ("ids", k + s, layout.id_bits)],
            )
        return self.records[layout]

    def arrays(self, layout: Layout) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        return {"records": (np.dtype(np.uint8), (self.record(layout).nbytes,))}

    def columns(self, layout: Layout) -> int:
        return layout.columns + EXTRA

    def prepare(self, passes: Passes, layout: Layout) -> dict[str, np.ndarray]:
        """The prior: the mean over the target tokens of the teacher's tail distribution
        outside the token's top-k (p_tail / m)."""
        total, n = torch.zeros(layout.vocab, dtype=torch.float64), 0
        for log_probs in passes():
            p = log_probs.double().exp()
            p_tail = p.scatter(-1, p.topk(layout.k, dim=-1).indices, 0.0)
            total += (p_tail / p_tail.sum(-1, keepdim=True).clamp(min=1e-300)).sum(0)
            n += len(log_probs)
        return {"prior": (total / max(n, 1)).float().numpy()}

    def sample(
        self, log_probs: Tensor, layout: Layout, gen: torch.Generator, prior: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """[N, V] -> values [N, k + S + 3] (the top log-probs, the draws' signs as +-1,
        then lambda's code, |d|_1 and the tail's sum p log p: what `encode` packs) and ids."""
        lead, vocab = log_probs.shape[:-1], log_probs.shape[-1]
        lp = log_probs.reshape(-1, vocab)
        k, s = layout.k, layout.tail_samples
        top_v, top_i = lp.topk(k, dim=-1)
        p = lp.double().exp()
        p_tail = p.scatter(-1, top_i, 0.0)
        pi = prior["prior"].double().expand_as(p).scatter(-1, top_i, 0.0)
        mass = p_tail.sum(-1, keepdim=True)
        guess = mass * pi / pi.sum(-1, keepdim=True).clamp(min=1e-300)
        ent = (p_tail * lp.double().masked_fill(p_tail == 0, 0.0)).sum(-1)
        lam, drawn, signs, l1 = residual_draws(p_tail, guess, s, gen)
        extra = torch.stack([lam.double(), l1, ent], -1)
        values = torch.cat([top_v.double(), 2.0 * signs - 1, extra], -1)
        ids = torch.cat([top_i, drawn, top_i[:, :1].expand(-1, 3)], -1)
        return values.reshape(*lead, -1).float(), ids.reshape(*lead, -1)

    def encode(
        self, values: Tensor, ids: Tensor, layout: Layout, gen: torch.Generator
    ) -> dict[str, np.ndarray]:
        k, s = layout.k, layout.tail_samples
        lp1 = values[:, 0].half()
        top, code = quantise(
            (lp1.float()[:, None] - values[:, 1:k]).clamp(min=0), self.value_bits, gen
        )
        lam, l1, ent = values[:, k + s], values[:, k + s + 1], values[:, k + s + 2]
        raw = {
            "lp1": lp1.numpy().astype("<f2").view(np.uint8).reshape(-1, 2),
            "code": code.numpy().astype(np.uint8)[:, None],
            "lam": lam.round().numpy().astype(np.uint8)[:, None],
            "l1": fp16_stochastic(l1, gen).numpy().astype("<f2").view(np.uint8).reshape(-1, 2),
            "ent": ent.half().numpy().astype("<f2").view(np.uint8).reshape(-1, 2),
        }
        groups = {
            "top": top.numpy(),
            "signs": (values[:, k : k + s] > 0).long().numpy(),
            "ids": ids[:, : k + s].numpy(),
        }
        return {"records": self.record(layout).pack(raw, groups)}

    def decode(self, arrays: dict[str, np.ndarray], layout: Layout) -> tuple[Tensor, Tensor]:
        """values [N, k + S + 2]: top log-probs, the draws' signed weights +-|d|_1 / S,
        lambda, the tail's sum p log p; ids [N, k + S + 2] (the last two: the top-1's)."""
        raw, f = self.record(layout).unpack(arrays["records"])
        half = lambda name: torch.from_numpy(  # noqa: E731
            np.ascontiguousarray(raw[name]).view("<f2").astype(np.float32)
        )
        base = half("lp1")  # [N, 1]
        step = step_of(torch.from_numpy(raw["code"].astype(np.int64)))  # [N, 1]
        k, s = layout.k, layout.tail_samples
        top = base - f["top"] * step if k > 1 else base[:, :0]
        weights = (2.0 * f["signs"].float() - 1) * half("l1") / max(s, 1) if s else base[:, :0]
        lam = LAMBDAS.float()[torch.from_numpy(raw["lam"].astype(np.int64))]
        values = torch.cat([base, top, weights, lam, half("ent")], 1)
        ids = f["ids"].long()
        return values, torch.cat([ids, ids[:, :1].expand(-1, EXTRA)], 1)

    def dense_vectors(self, prior: dict[str, Tensor]) -> Tensor:
        return prior["prior"].float()[None]  # the dense guess is read along the prior

    def estimator(self, prior: dict[str, Tensor]) -> Callable[..., Tensor]:
        return partial(residual_kd_loss, prior=prior["prior"].float())
