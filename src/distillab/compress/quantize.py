"""Post-training int8 for CPU inference: dynamic int8 of the GRU and Linear layers, and
weight-only int8 of the embedding table (with a tied output layer, one copy serves both)."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from transformers.pytorch_utils import Conv1D


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows with one float scale per row (symmetric,
    weight-only): a quarter of the float bytes. A lookup dequantizes only the rows it reads;
    ``weight`` (the tied output layer, the conversation bag) is the whole table dequantized."""

    def __init__(self, table: nn.Embedding) -> None:
        super().__init__()
        self.embed_scale = float(getattr(table, "embed_scale", None) or 1.0)  # BART's scaled
        w = table.weight.detach().float()
        scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        self.register_buffer("qweight", torch.round(w / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.padding_idx, self.embedding_dim = table.padding_idx, table.embedding_dim

    @property
    def weight(self) -> Tensor:
        return self.qweight.float() * self.scale

    def forward(self, ids: Tensor) -> Tensor:
        out = F.embedding(ids, self.qweight).float() * F.embedding(ids, self.scale)
        return out * self.embed_scale if self.embed_scale != 1.0 else out


def as_linear(layer: Conv1D) -> nn.Linear:
    """GPT-2's ``Conv1D`` (``x @ W + b``, ``W [in, out]``) as the equal ``nn.Linear``, which
    dynamic quantization covers."""
    w = layer.weight.detach()
    out = nn.Linear(w.size(0), w.size(1))
    with torch.no_grad():
        out.weight.copy_(w.t())
        out.bias.copy_(layer.bias.detach())
    return out


def replace_children(model: nn.Module, wanted, make) -> None:
    """Every child for which ``wanted(child)`` holds replaced by ``make(child)``; a module
    shared by several parents (a transformer's token embeddings) by one replacement."""
    done: dict[int, nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in done or wanted(child):
                if id(child) not in done:
                    done[id(child)] = make(child)
                setattr(parent, name, done[id(child)])


def token_table(m: nn.Module) -> bool:
    """A plain lookup table (a subclass that only scales, BART's, counts): not a positional
    embedding, whose forward takes more than the ids."""
    return type(m) is nn.Embedding or (isinstance(m, nn.Embedding) and hasattr(m, "embed_scale"))


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose GRU and Linear layers (and ``Conv1D``, as Linear) run int8
    weights with activations quantized on the fly (``torch.ao.quantization.quantize_dynamic``)
    and whose plain embedding tables are weight-only int8 (:class:`Int8Embedding`); CPU only.
    Positional embeddings stay float."""
    model = copy.deepcopy(model).cpu().eval()
    replace_children(model, lambda m: type(m) is Conv1D, as_linear)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        out = torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.Linear}, dtype=torch.qint8)
    replace_children(out, token_table, Int8Embedding)
    return out
