"""Post-training dynamic int8 quantization of the GRU and Linear layers, for CPU inference."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose GRU and Linear layers run int8 weights with activations
    quantized on the fly (``torch.ao.quantization.quantize_dynamic``); CPU only. Embeddings
    stay float (the tied output matrix is read as a float weight)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).cpu().eval(), {nn.GRU, nn.Linear}, dtype=torch.qint8
        )
