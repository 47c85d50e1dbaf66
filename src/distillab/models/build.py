"""The network a checkpoint's (or a module's) hyperparameters describe: one place that turns a
model config plus the data's wiring into a model, shared by the LightningModules that train it
and the checkpoint reader that loads it without them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn

from distillab.models.attention import attention_class


def build_model(hp: Mapping[str, Any]) -> nn.Module:
    """The network `hp` describes: its Hydra model config (`model`, a `_target_` node) wired to
    the data's vocabulary and the task heads it has (and the speaker markers, for an attention
    that reads the context's turns)."""
    speakers = {}
    if reads_turns(hp["model"]):
        speakers = {"self_id": hp.get("self_id"), "other_id": hp.get("other_id")}
    return instantiate(
        hp["model"],
        **speakers,
        vocab_size=hp["vocab_size"],
        pad_id=hp["pad_id"],
        num_topics=hp.get("num_topics", 0),
        rating_head=hp.get("rating_head", False),
        conversation_bag=hp.get("conversation_bag", False),
    )


def reads_turns(model: Mapping[str, Any]) -> bool:
    """Whether the model config's attention reads the context's turns (a batch then carries
    them: `DialogueDataModule(turns=True)`)."""
    name = model.get("attention")
    return isinstance(name, str) and attention_class(name).reads_turns
