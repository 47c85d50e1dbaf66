"""Task weighting: how the `Objective` turns its terms' values and base weights into one loss.

A weighting is an `nn.Module` built with the objective's term names (`conf/weighting/`,
`_partial_: true`; the objective passes `names`) and called once per step as
`weighting(values, base) -> (total, effective weights)`, `base` being the configured (possibly
scheduled) weights of the terms computed this step. Learned parameters are submodules of the
objective, so they are in the optimiser and in checkpoints.

- `Fixed`: `sum_n w_n L_n` (the configured weights as they are).
- `Uncertainty` (Kendall et al. 2018): a learned log-variance `s_n` per term,
  `sum_n (exp(-s_n) w_n L_n + s_n)`; the effective weight is `w_n exp(-s_n)` (at the start
  `s_n = 0`: the configured weights). Minimising over `s_n` gives `exp(-s_n) = 1 / (w_n L_n)`:
  every term is pulled towards the same contribution.
- `DWA`, dynamic weight averaging (Liu et al. 2019): every `period` training steps, each
  term's mean value over the last period is divided by its mean over the period before
  (`r_n`: how slowly it falls); the weights are `w_n K softmax(r / temperature)_n` (K terms),
  so a term that stopped improving gets more weight. Until two periods have passed they are
  the configured ones. (The paper uses epochs; a step period works for any budget.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from distillab.errors import check_range


class Fixed(nn.Module):
    def __init__(self, names: Sequence[str] = ()) -> None:
        super().__init__()

    def forward(
        self, values: Mapping[str, Tensor], base: Mapping[str, float]
    ) -> tuple[Tensor, dict[str, float]]:
        total = sum(base[n] * v for n, v in values.items())
        return total, dict(base)


class Uncertainty(nn.Module):
    def __init__(self, names: Sequence[str] = (), init: float = 0.0) -> None:
        super().__init__()
        check_range("weighting.init", init, -10.0, 10.0)
        self.names = list(names)
        self.log_vars = nn.ParameterDict(
            {n: nn.Parameter(torch.tensor(float(init))) for n in self.names}
        )

    def forward(
        self, values: Mapping[str, Tensor], base: Mapping[str, float]
    ) -> tuple[Tensor, dict[str, float]]:
        total: Tensor | int = 0
        effective = dict(base)
        for n, v in values.items():
            s = self.log_vars[n]
            total = total + torch.exp(-s) * base[n] * v + s
            effective[n] = float(base[n] * torch.exp(-s.detach()))
        return total, effective


class DWA(nn.Module):
    def __init__(self, names: Sequence[str] = (), period: int = 50, temperature: float = 2.0):
        super().__init__()
        check_range("weighting.period", period, 1, None)
        check_range("weighting.temperature", temperature, 0.0, None, low_inclusive=False)
        self.names, self.period, self.temperature = list(names), int(period), float(temperature)
        k = len(self.names)
        # running sums of the current period; the means of the last two full periods
        self.register_buffer("sums", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("last", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("before", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def factors(self) -> dict[str, float]:
        """`K softmax(r / temperature)` over the K terms seen in both of the last two
        periods; 1 for the others (and for all until two periods are complete)."""
        seen = (self.before > 0) & (self.last > 0)
        lam = torch.ones(len(self.names), dtype=torch.float64)
        if bool(seen.any()):
            ratio = self.last[seen] / self.before[seen]
            lam[seen] = int(seen.sum()) * torch.softmax(ratio / self.temperature, dim=0).cpu()
        return {n: float(x) for n, x in zip(self.names, lam, strict=True)}

    @torch.no_grad()
    def _observe(self, values: Mapping[str, Tensor]) -> None:
        for i, n in enumerate(self.names):
            if n in values:
                self.sums[i] += float(values[n].detach())
                self.counts[i] += 1
        self.step += 1
        if int(self.step) % self.period == 0:
            means = torch.where(self.counts > 0, self.sums / self.counts.clamp(min=1), self.last)
            self.before.copy_(self.last)
            self.last.copy_(means)
            self.sums.zero_()
            self.counts.zero_()

    def forward(
        self, values: Mapping[str, Tensor], base: Mapping[str, float]
    ) -> tuple[Tensor, dict[str, float]]:
        lam = self.factors()
        effective = {n: w * lam.get(n, 1.0) for n, w in base.items()}
        total = sum(effective[n] * v for n, v in values.items())
        if self.training:
            self._observe(values)
        return total, effective


__all__ = ["DWA", "Fixed", "Uncertainty"]
