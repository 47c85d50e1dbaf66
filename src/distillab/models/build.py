"""The network a module's hyperparameters describe (its Hydra model config + data wiring)."""

from __future__ import annotations

from typing import Any

import torch
from hydra.utils import instantiate


def build_model(hp: Any) -> torch.nn.Module:
    return instantiate(
        hp["model"],
        vocab_size=hp["vocab_size"],
        pad_id=hp["pad_id"],
        num_topics=hp.get("num_topics", 0),
        rating_head=hp.get("rating_head", False),
        conversation_bag=hp.get("conversation_bag", False),
    )
