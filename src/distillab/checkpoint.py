"""Reading distillab checkpoints (interim: replaced by the checkpoint I/O module)."""

from __future__ import annotations

import torch

from distillab.models.build import build_model


def read_checkpoint(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: str) -> torch.nn.Module:
    state = read_checkpoint(path)
    model = build_model(state["hyper_parameters"])
    weights = {
        k[len("model.") :]: v for k, v in state["state_dict"].items() if k.startswith("model.")
    }
    model.load_state_dict(weights)
    return model.eval()
