"""Structured pruning of the transformer families: whole attention heads and feed-forward
units go (`compress.mode=structured` with `compress.pruners.structured._target_:
distillab.compress.HeadPruning`), so the saved model really is smaller and faster.

The model family lists its unit groups (`unit_groups()`: each layer's heads, each layer's
feed-forward units, see :mod:`distillab.models.transformer_units`); per group the units whose
weights (query/key/value rows and output columns of a head; inner rows and outer columns of a
feed-forward unit) have the smallest L1 norm go, chosen by ``torch.nn.utils.prune.LnStructured``
as for the GRU's hidden units. The model width (``hidden_size``) stays, so whatever reads the
model's states outside it (a hidden-state projection) is unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from distillab.compress.structured import keep_units
from distillab.errors import ConfigError
from distillab.models.transformer_units import FeedForward, Heads, UnitGroup


class HeadPruning:
    """Removes ``sparsity`` of every group's units (rounded, at least one kept per group):
    ``prune(model, 0.5)`` returns a copy with half the heads and half the feed-forward units
    of each layer. ``heads`` / ``ffn``: which kinds of group it prunes."""

    gradual = False  # no masks in place: after training, in stages with fine-tuning
    shrinks = True

    def __init__(self, heads: bool = True, ffn: bool = True) -> None:
        self.heads, self.ffn = heads, ffn

    def chosen(self, model: nn.Module) -> list[UnitGroup]:
        if not hasattr(model, "unit_groups"):
            raise ConfigError(
                f"compress.mode: {type(model).__name__} has no attention heads or feed-forward "
                "units to remove (a GRU student: compress.mode=structured)"
            )
        kinds = tuple(k for k, on in ((Heads, self.heads), (FeedForward, self.ffn)) if on)
        return [g for g in model.unit_groups() if isinstance(g, kinds)]

    def width(self, model: nn.Module) -> int:
        """What it shrinks, counted: the units of the groups it prunes."""
        return sum(g.size for g in self.chosen(model))

    def model_config(self, model: nn.Module) -> dict[str, Any]:
        """The model-config keys that rebuild the shrunk model (its checkpoint's)."""
        return model.structure()

    def prune(self, model: nn.Module, sparsity: float) -> nn.Module:
        return self.shrink(model, sparsity)[0]

    @torch.no_grad()
    def shrink(self, model: nn.Module, sparsity: float) -> tuple[nn.Module, Tensor | None]:
        """(the smaller copy, None: no encoder output unit goes)."""
        new = copy.deepcopy(model)
        for group in self.chosen(new):
            n_keep = max(1, round(group.size * (1.0 - sparsity)))
            if n_keep < group.size:
                group.keep(keep_units(group.unit_weights(), n_keep))
        return new, None
