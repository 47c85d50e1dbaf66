"""The training objective: a weighted sum of named loss terms.

    loss = sum_name weight_name(progress) * term_name(ctx)

Terms (`losses.terms`) return unweighted values, logged as `train/<name>`; the weights and
their schedules are applied here and nowhere else, through the task weighting
(`losses.weighting`, the `weighting` config group: fixed, uncertainty, dwa), whose effective
weights are logged as `weight/<name>`. Training on gold data has the terms `ce` (+ `topic`,
`rating` with task=multi). Distillation adds `kd` (under `distill.objective.divergence`), the
head-distillation terms `topic_kd` and `rating_kd` where the task has those heads, and whatever
`distill.objective.terms` lists, and mixes gold and teacher by `alpha`:

    (1 - alpha) * ce + alpha * kd + sum_other weight * term + task-head terms

with `alpha` and the temperature optionally scheduled linearly over training.

The distillation temperature's path, `distill.objective.temperature` to the loss (range-checked
once, by `distillab.config`; nothing on the way checks it again):

1. the composition root (`compose.modules.distillation_module`) calls `distill_objective`,
   which turns it (and `temperature_end`) into the `Objective`'s schedule;
2. `DistillationModule.loss_context` puts `objective.temperature(progress)` into
   `LossContext.temperature`;
3. the `LogitKD` term hands `ctx.temperature` to the teacher's output (`TeacherOutput.kd_loss`);
4. which calls its KD function with it: `kd_loss_from_probs` (online teachers) or
   `topk_kd_loss` (the teacher-output cache).

The cached path's second temperature is the cache's own, `softening_temperature` (what its
log-probabilities were softened at): the composition root builds the `TeacherCache` at the
starting distillation temperature; it records it, its `CachedOutput` carries it, and
`topk_kd_loss(softening_temperature=...)` reweighs the cached target when the two differ.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from hydra.utils import get_class, instantiate
from torch import Tensor, nn

from distillab.config.constants import BUILT_IN_TERMS
from distillab.losses.context import LossContext
from distillab.losses.terms import LogitKD, RatingDistill, TopicKD
from distillab.losses.weighting import Fixed

BUILT_IN = BUILT_IN_TERMS  # the objective's own term names (config: no extra term takes one)
WeightingFactory = Callable[..., nn.Module]  # (names=[...]) -> a weighting module

Weight = Callable[[float], float]  # progress in [0, 1] -> weight


def linear(start: float, end: float | None = None) -> Weight:
    """`start` throughout when `end` is None, else linear from `start` to `end` over training."""
    if end is None:
        return lambda progress: start
    return lambda progress: start + (end - start) * min(max(progress, 0.0), 1.0)


class Objective(nn.Module):
    """Named terms and their weights; terms with weight 0 at this step are not computed, nor
    those that need gold responses on a batch of the student's own samples (`ctx.gold`)."""

    def __init__(
        self,
        terms: Mapping[str, nn.Module],
        weights: Mapping[str, Weight],
        temperature: Weight | None = None,
        weighting: WeightingFactory | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if set(terms) != set(weights):
            raise ValueError(f"terms {sorted(terms)} and weights {sorted(weights)} differ")
        self.terms = nn.ModuleDict(terms)
        self._weights = dict(weights)
        self._temperature = temperature or linear(1.0)
        self.weighting = (weighting or Fixed)(names=list(terms))
        # what it was built from, as plain data: a module records it in its checkpoint's
        # hyperparameters (for the record: it is never rebuilt from there)
        self.config = dict(config or {})

    def weights(self, progress: float) -> dict[str, float]:
        """The configured (scheduled) weights; the weighting may change them (`forward`)."""
        return {name: float(w(progress)) for name, w in self._weights.items()}

    def temperature(self, progress: float) -> float:
        """The distillation temperature at `progress` (`distill.objective.temperature`,
        scheduled to `temperature_end`)."""
        return float(self._temperature(progress))

    def forward(self, ctx: LossContext, progress: float) -> tuple[Tensor, dict, dict]:
        """-> (total loss, unweighted term values, the effective weights used)."""
        base = self.weights(progress)
        if not ctx.gold:
            base = {
                n: 0.0 if getattr(self.terms[n], "needs_gold", False) else w
                for n, w in base.items()
            }
        values = {n: term(ctx) for n, term in self.terms.items() if base[n] != 0}
        total, weights = self.weighting(values, {n: base[n] for n in values})
        return total, values, {**base, **weights}


def gold_objective(
    terms: Mapping[str, nn.Module],
    weights: Mapping[str, float],
    weighting: WeightingFactory | None = None,
) -> Objective:
    """Training on gold data: constant weights (before the task weighting)."""
    return Objective(terms, {n: linear(w) for n, w in weights.items()}, weighting=weighting)


def build_term(spec: Mapping[str, Any], wiring: Mapping[str, Any]) -> nn.Module:
    """Instantiate a term config, filling the wiring arguments its constructor declares
    (`student_hidden`, `teacher_hidden`) that the config does not set."""
    params = inspect.signature(get_class(spec["_target_"])).parameters
    extra = {k: v for k, v in wiring.items() if k in params and k not in spec}
    return instantiate(dict(spec), **extra)


def distill_objective(
    gold: Mapping[str, nn.Module],
    gold_weights: Mapping[str, float],
    alpha: float,
    temperature: float,
    alpha_end: float | None = None,
    temperature_end: float | None = None,
    terms: Mapping[str, Any] | None = None,
    divergence: str = "forward_kl",
    jsd_beta: float = 0.5,
    topic_kd: float = 0.0,
    rating_kd: float = 0.0,
    head_temperature: float | None = None,
    wiring: Mapping[str, Any] | None = None,
    weighting: WeightingFactory | None = None,
) -> Objective:
    """The distillation objective from `distill.objective` and the gold terms. The heads'
    distillation terms (`topic_kd`, `rating_kd`: their weights) exist where the student has
    that head (a gold `topic` / `rating` term). `wiring`: the student's and the main teacher's
    widths (`student_hidden`, `teacher_hidden`) for the terms that declare them."""
    config = {
        "alpha": alpha,
        "temperature": temperature,
        "alpha_end": alpha_end,
        "temperature_end": temperature_end,
        "terms": {n: dict(spec) for n, spec in (terms or {}).items()},
        "divergence": divergence,
        "jsd_beta": jsd_beta,
        "topic_kd": topic_kd,
        "rating_kd": rating_kd,
        "head_temperature": head_temperature,
    }
    a = linear(alpha, alpha_end)
    all_terms: dict[str, nn.Module] = {**gold, "kd": LogitKD(divergence, jsd_beta)}
    weights: dict[str, Weight] = {n: linear(w) for n, w in gold_weights.items()}
    weights["ce"] = lambda p: (1.0 - a(p)) * gold_weights["ce"]
    weights["kd"] = a
    heads = {
        "topic": ("topic_kd", lambda: TopicKD(head_temperature), topic_kd),
        "rating": ("rating_kd", RatingDistill, rating_kd),
    }
    for head, (name, term, w) in heads.items():
        if head in gold and w > 0:
            all_terms[name], weights[name] = term(), linear(float(w))
    for name, spec in (terms or {}).items():
        spec = dict(spec)
        w = float(spec.pop("weight"))
        all_terms[name] = build_term(spec, wiring or {})
        weights[name] = linear(w)
    return Objective(all_terms, weights, linear(temperature, temperature_end), weighting, config)
