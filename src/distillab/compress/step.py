"""Checkpoint-level pieces of the compression step (`distillab.pipelines.compress`): a
checkpoint's network with masks folded, a compressed checkpoint in the original's format, the
fixed evaluation inputs and the agreement of two decodes."""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from distillab.checkpoint import hyperparameters, model_weights, read_checkpoint
from distillab.compress.pruning import fold_state_dict
from distillab.data.batching import collate
from distillab.models.build import build_model


def load_checkpoint_model(ckpt: str) -> tuple[nn.Module, dict]:
    """(the network of a distillab checkpoint with masks folded, the checkpoint dict)."""
    state = read_checkpoint(ckpt)
    model = build_model(hyperparameters(state))
    model.load_state_dict(fold_state_dict(model_weights(state)))
    return model.eval(), state


def save_checkpoint(
    state: dict,
    model: nn.Module,
    path: Path,
    rest: dict | None = None,
    sizes: dict | None = None,
) -> None:
    """A checkpoint of ``model`` in the original's format, its model config rewritten to the
    new sizes (``sizes``, from the pruning method; default: ``hidden_size``), which
    ``distillab.checkpoint`` rebuilds; ``rest``: the module's other tensors (an objective
    whose projection narrowed with the model), over the original's."""
    out = {k: v for k, v in state.items() if k not in ("optimizer_states", "lr_schedulers")}
    hp = copy.deepcopy(dict(state["hyper_parameters"]))
    hp["model"] = {**dict(hp["model"]), **(sizes or {"hidden_size": int(model.hidden_size)})}
    out["hyper_parameters"] = hp
    old = {k: v for k, v in state["state_dict"].items() if not k.startswith("model.")}
    rest = {**old, **(rest or {})}
    out["state_dict"] = {**rest, **{f"model.{k}": v for k, v in model.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)


def fixed_inputs(dm, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` validation contexts in their fixed order, one at a time, unpadded."""
    ids = dict(pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id)
    loader = DataLoader(dm.datasets["val"], 1, collate_fn=partial(collate, **ids))
    out = []
    for i, b in enumerate(loader):
        if i == n:
            break
        out.append((b.src, b.src_mask))
    return out


def token_agreement(a: list[np.ndarray], b: list[np.ndarray], pad_id: int) -> float:
    """Share of positions (where either decode has a token) on which two decodes agree."""
    same = total = 0
    for x, y in zip(a, b, strict=True):
        n = max(len(x), len(y))
        x = np.pad(x, (0, n - len(x)), constant_values=pad_id)
        y = np.pad(y, (0, n - len(y)), constant_values=pad_id)
        real = (x != pad_id) | (y != pad_id)
        same += int(((x == y) & real).sum())
        total += int(real.sum())
    return same / max(total, 1)
