"""Unstructured L1-magnitude pruning through ``torch.nn.utils.prune``: which tensors, masks on,
masks folded into plain weights.

A pruning method is a plug-in chosen by ``_target_`` (``compress.pruners.<mode>``) with one
method, ``prune(model, sparsity) -> model``; :class:`MagnitudePruning` masks in place (so it can
run under a schedule during training, the optimiser keeping its parameters), while
:class:`~distillab.compress.structured.HiddenUnitPruning` returns a smaller model.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn.utils import prune
from transformers.pytorch_utils import Conv1D

from distillab.models.rnn import gru_weight_names

LINEAR = (nn.Linear, Conv1D)  # GPT-2's Conv1D is a Linear with its weight stored transposed


def prunable(model: nn.Module, embeddings: bool = False) -> list[tuple[nn.Module, str, str]]:
    """``(module, tensor name, qualified name)`` of every weight matrix pruning may zero: the
    GRUs' ``weight_ih_l*`` / ``weight_hh_l*``, every Linear's (and transformers' ``Conv1D``'s)
    weight (attention, feed-forward, bridge, combine, output projection, heads) and, with
    ``embeddings``, the embedding tables. An output layer tied to an embedding table (the same
    Parameter, as in the transformer families) counts as the table: pruning it alone would
    untie them."""
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out = []
    for qual, module in model.named_modules():
        prefix = f"{qual}." if qual else ""
        if isinstance(module, nn.GRU):
            names = gru_weight_names(module)
        elif isinstance(module, LINEAR) and id(module.weight) not in tables:
            names = ["weight"]
        elif embeddings and isinstance(module, nn.Embedding):
            names = ["weight"]
        else:
            continue
        out += [(module, n, prefix + n) for n in names]
    return out


def fold(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight (``prune.remove``): plain parameters with zeros,
    the same Parameter objects (an optimiser holding them stays valid)."""
    for module in model.modules():
        masked = [n.removesuffix("_mask") for n, _ in module.named_buffers(recurse=False)]
        params = dict(module.named_parameters(recurse=False))
        for name in [n for n in masked if f"{n}_orig" in params]:  # prune's <name>_orig/_mask
            prune.remove(module, name)
    return model


def fold_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict with ``<name>_orig`` / ``<name>_mask`` pairs as plain ``<name>`` weights."""
    out = {}
    for key, value in state.items():
        if key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state:
            base = key[: -len("_orig")]
            out[base] = value * state[base + "_mask"]
        else:
            out[key] = value
    return out


class MagnitudePruning:
    """L1-magnitude unstructured pruning, per tensor (``scope=layer``: each pruned tensor
    reaches the sparsity) or across all of them (``scope=global``: one magnitude threshold)."""

    gradual = True  # masks in place: can run on a schedule during training

    def __init__(self, scope: Literal["layer", "global"] = "layer", embeddings: bool = False):
        self.scope, self.embeddings = scope, embeddings

    def prune(self, model: nn.Module, sparsity: float) -> nn.Module:
        """Mask ``model`` in place to ``sparsity`` of its prunable weights' magnitudes. Earlier
        masks are folded first: pruned weights are zero, the smallest, and stay pruned as the
        sparsity grows."""
        fold(model)
        targets = [(m, n) for m, n, _ in prunable(model, self.embeddings)]
        if self.scope == "global":
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
        else:
            for module, name in targets:
                prune.l1_unstructured(module, name, amount=sparsity)
        return model
