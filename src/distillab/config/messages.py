"""Pydantic's `ValidationError` as one `ConfigError` line in distillab's words: the key path,
the value and what is allowed (the range, the choices, the closest valid name)."""

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


def path(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def shown(key: str, value: Any) -> str:
    return key if isinstance(value, (dict, list)) else f"{key}={value!r}"


def unwrap(tp: Any) -> list:
    """The members of a Union / Optional, Annotated stripped."""
    if typing.get_origin(tp) is typing.Annotated:
        return unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in unwrap(a)]
    return [tp]


def walk(root: Any, loc: tuple) -> tuple[Any, Any]:
    """(annotation, FieldInfo or None) at `loc` under the model `root`."""
    tp, info = root, None
    for part in loc:
        for m in unwrap(tp):
            if isinstance(m, type) and issubclass(m, BaseModel):
                fields = {f.alias or n: f for n, f in m.model_fields.items()}
                info = fields.get(part)
                tp = info.annotation if info else Any
                break
            if typing.get_origin(m) in (list, dict):
                tp, info = typing.get_args(m)[-1], None
                break
    return tp, info


def bounds(tp: Any, info: Any) -> str:
    meta = list(info.metadata if info else [])
    for m in (tp, *typing.get_args(tp)):
        if typing.get_origin(m) is typing.Annotated:
            meta += [x for a in typing.get_args(m)[1:] for x in getattr(a, "metadata", [a])]
    lo = hi = None
    lo_br, hi_br = "[", "]"
    for m in meta:
        if isinstance(m, (at.Ge, at.Gt)):
            lo, lo_br = (m.ge, "[") if isinstance(m, at.Ge) else (m.gt, "(")
        if isinstance(m, (at.Le, at.Lt)):
            hi, hi_br = (m.le, "]") if isinstance(m, at.Le) else (m.lt, ")")
    return f"{lo_br}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{hi_br}"


def kinds(errors: list[dict], tp: Any) -> str:
    """What the value must be, from the errors pydantic gave for each member of its type."""
    what = []
    for e in errors:
        kind = KINDS.get(e["type"].split("_")[0])
        if e["type"] == "literal_error":
            literals = [a for m in unwrap(tp) for a in typing.get_args(m)] or [e["ctx"]["expected"]]
            kind = f"one of {literals}"
        if kind and kind not in what:
            what.append(kind)
    if "a number" in what and "an integer" in what:
        what.remove("an integer")
    if type(None) in unwrap(tp) and "null" not in what:
        what.append("null")
    return " or ".join(what) or "something else"


def message(e: ValidationError, root: Any, prefix: tuple = ()) -> str:
    """The first error of `e` as distillab's one line (`root`: the model validated)."""
    errors = e.errors()
    first = errors[0]
    loc, kind, value = tuple(first["loc"]), first["type"], first["input"]
    key = path(prefix + loc)
    tp, info = walk(root, loc)
    if kind in ("value_error", "assertion_error"):
        at_ = key + "." if key else ""
        return str(first["ctx"]["error"]).replace("@.", at_).replace("@", key)
    if kind == "missing":
        owner = next(m for m in unwrap(walk(root, loc[:-1])[0]) if hasattr(m, "model_fields"))
        return f"{key} is missing ({owner.model_config.get('title')} needs it)"
    if kind == "extra_forbidden":
        owner = next(m for m in unwrap(walk(root, loc[:-1])[0]) if hasattr(m, "model_fields"))
        valid = [f.alias or n for n, f in owner.model_fields.items()]
        return unknown(key, value, valid, owner.model_config.get("title"))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{key}={value!r} is out of range; allowed: {bounds(tp, info)}"
    if kind == "literal_error" and len(errors) == 1:
        choices = [a for m in unwrap(tp) for a in typing.get_args(m)]
        return f"{key}={value!r} is not allowed; choose one of {choices}"
    same = [x for x in errors if tuple(x["loc"])[: len(loc)] == loc]
    return f"{key}={value!r} must be {kinds(same, tp)}"


def unknown(key: str, value: Any, valid: list[str], owner: Any) -> str:
    """`key` is not a setting of `owner`: the closest valid names (difflib)."""
    parent, _, name = key.rpartition(".")
    prefix = parent + "." if parent else ""
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = (
        "did you mean " + " or ".join(prefix + c for c in close) + "?"
        if close
        else "valid keys: " + ", ".join(sorted(valid))
    )
    return f"{shown(key, value)} is not a setting of {owner}; {hint}"


def raise_one_line(e: ValidationError, root: Any, prefix: tuple = ()) -> typing.NoReturn:
    raise ConfigError(message(e, root, prefix)) from None
