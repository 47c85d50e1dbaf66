"""The network a checkpoint's (or a module's) hyperparameters describe: one place that turns a
model config plus the data's wiring into a model, shared by the LightningModules that train it
and the checkpoint reader that loads it without them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn


def build_model(hp: Mapping[str, Any]) -> nn.Module:
    """The network `hp` describes: its Hydra model config (`model`, a `_target_` node) wired to
    the data's vocabulary and the task heads it has."""
    return instantiate(
        hp["model"],
        vocab_size=hp["vocab_size"],
        pad_id=hp["pad_id"],
        num_topics=hp.get("num_topics", 0),
        rating_head=hp.get("rating_head", False),
        conversation_bag=hp.get("conversation_bag", False),
    )
