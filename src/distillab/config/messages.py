"""Pydantic's `ValidationError` as one `ConfigError` line in distillab's words: the key path,
the value and what is allowed (the range, the choices, the closest valid name). A validator's
own message names its node `@`, replaced here by the node's path."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import annotated_types as at
from pydantic import BaseModel, ValidationError

from distillab.errors import ConfigError

KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string"}
KINDS |= {"dict": "a mapping", "model": "a mapping", "list": "a list", "none": "null"}
KINDS |= {"too": "of two items", "tuple": "a list"}


def unwrap(tp: Any) -> list:
    """The members of a Union / Optional, Annotated stripped."""
    if typing.get_origin(tp) is typing.Annotated:
        return unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in unwrap(a)]
    return [tp]


def walk(root: Any, loc: tuple) -> tuple[Any, list]:
    """(annotation, constraints) at `loc` under the model `root`."""
    tp, meta = root, []
    for part in loc:
        for m in unwrap(tp):
            if isinstance(m, type) and issubclass(m, BaseModel):
                info = {f.alias or n: f for n, f in m.model_fields.items()}.get(part)
                tp, meta = (info.annotation, info.metadata) if info else (Any, [])
                break
            if typing.get_origin(m) in (list, dict, tuple):
                tp, meta = typing.get_args(m)[-1], []
                break
    return tp, meta


def model_at(root: Any, loc: tuple) -> Any:
    return next(m for m in unwrap(walk(root, loc)[0]) if hasattr(m, "model_fields"))


def bounds(tp: Any, meta: list, value: Any) -> str:
    """`[low, high]` of the member of `tp` that `value`'s type matches."""
    for m in (tp, *typing.get_args(tp)):
        args = typing.get_args(m) if typing.get_origin(m) is typing.Annotated else ()
        if args and isinstance(value, (int, float) if args[0] is float else args[0]):
            meta = meta + [x for a in args[1:] for x in getattr(a, "metadata", [a])]
    lo = hi = None
    lo_br, hi_br = "[", "]"
    for m in meta:
        if isinstance(m, (at.Ge, at.Gt)):
            lo, lo_br = (m.ge, "[") if isinstance(m, at.Ge) else (m.gt, "(")
        if isinstance(m, (at.Le, at.Lt)):
            hi, hi_br = (m.le, "]") if isinstance(m, at.Le) else (m.lt, ")")
    return f"{lo_br}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{hi_br}"


def kinds(errors: list[dict], tp: Any) -> str:
    """What the value must be, from pydantic's errors for each member of its type."""
    what = []
    for e in errors:
        kind = KINDS.get(e["type"].split("_")[0])
        if e["type"] == "literal_error":
            kind = f"one of {[a for m in unwrap(tp) for a in typing.get_args(m)]}"
        if kind and kind not in what:
            what.append(kind)
    if "a number" in what and "an integer" in what:
        what.remove("an integer")
    return " or ".join(what + ["null"] * (type(None) in unwrap(tp) and "null" not in what))


def message(e: ValidationError, root: Any, prefix: tuple = ()) -> str:
    """The first error of `e` as distillab's one line (`root`: the model validated)."""
    first = e.errors()[0]
    loc, kind, value = tuple(first["loc"]), first["type"], first["input"]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in prefix + loc).lstrip(".")
    tp, meta = walk(root, loc)
    if kind in ("value_error", "assertion_error"):
        return str(first["ctx"]["error"]).replace("@.", key + "." if key else "").replace("@", key)
    if kind == "missing":
        return f"{key} is missing ({model_at(root, loc[:-1]).model_config.get('title')} needs it)"
    if kind == "extra_forbidden":
        owner = model_at(root, loc[:-1])
        valid = [f.alias or n for n, f in owner.model_fields.items()]
        return unknown(key, value, valid, owner.model_config.get("title"))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{key}={value!r} is out of range; allowed: {bounds(tp, list(meta), value)}"
    same = [x for x in e.errors() if tuple(x["loc"])[: len(loc)] == loc]
    if kind == "literal_error" and len(same) == 1:
        choices = [a for m in unwrap(tp) for a in typing.get_args(m)]
        return f"{key}={value!r} is not allowed; choose one of {choices}"
    return f"{key}={value!r} must be {kinds(same, tp)}"


def unknown(key: str, value: Any, valid: list[str], owner: Any) -> str:
    """`key` is not a setting of `owner`: the closest valid names (difflib)."""
    parent, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = " or ".join(f"{parent}.{c}".lstrip(".") for c in close)
    hint = f"did you mean {hint}?" if close else "valid keys: " + ", ".join(sorted(valid))
    shown = key if isinstance(value, (dict, list)) else f"{key}={value!r}"
    return f"{shown} is not a setting of {owner}; {hint}"


def raise_one_line(e: ValidationError, root: Any, prefix: tuple = ()) -> typing.NoReturn:
    raise ConfigError(message(e, root, prefix)) from None
