"""Nodes with a `_target_`: the target imports, the node's keys are its parameters (closest
names suggested), and values match its plain annotations."""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

from distillab.errors import ConfigError
from distillab.validate.fields import KIND_NAMES, is_a, is_node, unknown_key

# Hydra's own keys: never parameters of the target
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def locate(path: str) -> Any:
    """The object at a dotted path (the longest importable module prefix, then attributes)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                continue  # not a module: try a shorter prefix
            raise
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def import_target(key: str, path: Any) -> Any:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key}={path!r} must be a dotted path to a class or function")
    try:
        return locate(path)
    except Exception as e:  # noqa: BLE001 - any import failure is a config error here
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise ConfigError(f"{key}={path!r} cannot be imported ({reason})") from None


def parameters(target: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """(named parameters, whether it accepts any keyword) of a class or function."""
    if inspect.isclass(target):
        owner = next((k for k in target.__mro__ if "__init__" in vars(k)), object)
        if owner is object or (owner.__module__, owner.__name__) == (
            "torch.nn.modules.module",
            "Module",
        ):
            return {}, False  # no constructor of its own: takes no settings
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}, True  # cannot tell: accept anything
    params = {
        n: p
        for n, p in sig.parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return params, any_kw


PLAIN_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def plain_annotation(ann: Any) -> tuple[set, list, bool] | None:
    """(plain types, Literal values, None allowed) of an annotation built only from int, float,
    bool, str, None and Literal (Union / Optional / `|` of them); None when it is not plain."""
    if isinstance(ann, str):
        text = ann.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            inner = plain_annotation(text[len("Optional[") : -1])
            return None if inner is None else (inner[0], inner[1], True)
        parts = [p.strip() for p in text.split("|")]
        if not all(p in PLAIN_NAMES for p in parts):
            return None
        return {PLAIN_NAMES[p] for p in parts if p != "None"}, [], "None" in parts
    if ann in (int, float, bool, str):
        return {ann}, [], False
    if ann is None or ann is type(None):
        return set(), [], True
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return set(), list(typing.get_args(ann)), False
    if origin is typing.Union or origin is types.UnionType:
        kinds, literals, null = set(), [], False
        for arg in typing.get_args(ann):
            sub = plain_annotation(arg)
            if sub is None:
                return None
            kinds |= sub[0]
            literals += sub[1]
            null = null or sub[2]
        return kinds, literals, null
    return None


def check_annotation(key: str, value: Any, ann: Any) -> None:
    plain = plain_annotation(ann)
    if plain is None or ann is inspect.Parameter.empty:
        return
    kinds, literals, null = plain
    if value is None and null:
        return
    if value is not None and any(is_a(value, k) for k in kinds):
        return
    if any(value == lit and type(value) is type(lit) for lit in literals):
        return
    if float in kinds:
        kinds = kinds - {int}
    what = [KIND_NAMES[k] for k in (int, float, bool, str) if k in kinds]
    if literals:
        what.append(f"one of {literals}")
    if null:
        what.append("null")
    raise ConfigError(f"{key}={value!r} must be {' or '.join(what)}")


def check_target_keys(
    key: str,
    node: dict,
    target: Any,
    name: str,
    extra: tuple[str, ...] = (),
    wired: Mapping[str, str] | None = None,
) -> None:
    """Every key of `node` is a parameter of `target` (or in `extra`); plain types match."""
    params, any_kw = parameters(target)
    wired = wired or {}
    valid = [p for p in params if p not in wired] + list(extra)
    for k, v in node.items():
        if k in HYDRA_KEYS or k in extra:
            continue
        if k in wired:
            raise ConfigError(f"{key}.{k} cannot be set here: {wired[k]}")
        if k not in params:
            if any_kw:
                continue
            raise unknown_key(f"{key}.{k}", v, valid, name)
        if not is_node(v):
            check_annotation(f"{key}.{k}", v, params[k].annotation)


def check_target(
    key: str,
    node: Any,
    extra: tuple[str, ...] = (),
    wired: Mapping[str, str] | None = None,
) -> Any:
    """A node with a `_target_`: importable, known keys, plain types. Returns the target."""
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key} must be a config with a _target_ (a class or function)")
    target = import_target(f"{key}._target_", node["_target_"])
    check_target_keys(key, node, target, node["_target_"], extra, wired)
    return target
