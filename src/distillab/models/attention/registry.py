"""Attention kinds by name: the plug-in point of `model.attention`.

A kind is one module with an :class:`~distillab.models.attention.base.Attention` subclass
decorated ``@register("name")``; `model.attention=name` selects it. A class outside distillab
is named by its dotted path (`model.attention=my_pkg.attn.MyAttention`). Names rather than a
nested `_target_` node: `model.attention=multihead` stays a plain override, and checkpoints
whose hyperparameters say `attention: additive` rebuild unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hydra.utils import get_object

from distillab.models.attention.base import Attention

ATTENTIONS: dict[str, type[Attention]] = {}
OPTION_PREFIX = "attention_"  # model.attention_heads -> the kind's `heads`


def register(name: str) -> Callable[[type[Attention]], type[Attention]]:
    """Class decorator: make the class `model.attention=<name>`."""

    def add(cls: type[Attention]) -> type[Attention]:
        if name in ATTENTIONS and ATTENTIONS[name] is not cls:
            raise ValueError(f"attention {name!r} is registered twice")
        cls.kind = name
        ATTENTIONS[name] = cls
        return cls

    return add


def attention_class(name: str) -> type[Attention]:
    """The class `name` (a registered name or a dotted path) selects; ValueError otherwise."""
    if name in ATTENTIONS:
        return ATTENTIONS[name]
    cls: Any = None
    if isinstance(name, str) and "." in name:
        try:
            cls = get_object(name)
        except Exception:  # noqa: BLE001 - any import failure: not an attention class
            cls = None
    if inspect.isclass(cls) and issubclass(cls, Attention):
        return cls
    raise ValueError(
        f"attention={name!r} is not allowed; choose one of {sorted(ATTENTIONS)} "
        "or the dotted path of an Attention subclass"
    )


def options_of(cls: type[Attention]) -> list[str]:
    """The kind's options: its constructor's keyword arguments after the two sizes."""
    params = list(inspect.signature(cls.__init__).parameters)[3:]
    return [p for p in params if p not in ("args", "kwargs")]


def check_attention(name: str, query_size: int, key_size: int, **options: Any) -> None:
    """ValueError for an unknown kind, an option it does not take or a value it refuses; the
    messages name the model keys (`attention`, `attention_<option>`)."""
    cls = attention_class(name)
    allowed = options_of(cls)
    for option in options:
        if option not in allowed:
            takes = ", ".join(OPTION_PREFIX + o for o in allowed) or "none"
            raise ValueError(
                f"{OPTION_PREFIX}{option} is not an option of attention={name!r} "
                f"(its options: {takes})"
            )
    cls.check(query_size, key_size, **options)


def build_attention(name: str, query_size: int, key_size: int, **options: Any) -> Attention:
    """The attention `name` selects, checked; options that are None take their defaults."""
    options = {k: v for k, v in options.items() if v is not None}
    check_attention(name, query_size, key_size, **options)
    return attention_class(name)(query_size, key_size, **options)
