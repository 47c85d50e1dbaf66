"""Attention plug-ins for the GRU decoder, chosen by name (`model.attention=<name>`).

Built in: ``additive`` (Bahdanau), ``multiplicative`` (Luong "general"), ``multihead``
(scaled dot-product, ``model.attention_heads``) and ``graph`` (a graph-attention layer over the
context's turns modulating the token attention). A new kind is one module with an
:class:`Attention` subclass under ``@register("name")`` (see :mod:`.registry`).
"""

from distillab.models.attention import additive, graph, multihead, multiplicative
from distillab.models.attention.base import Attention, AttentionMemory
from distillab.models.attention.registry import (
    ATTENTIONS,
    attention_class,
    build_attention,
    check_attention,
    register,
)

__all__ = [
    "ATTENTIONS",
    "Attention",
    "AttentionMemory",
    "additive",
    "attention_class",
    "build_attention",
    "check_attention",
    "graph",
    "multihead",
    "multiplicative",
    "register",
]
