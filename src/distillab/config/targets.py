"""Nodes chosen by `_target_` (plug-ins: one file plus one YAML). The group's schema types
and bounds the keys it knows; every other key must be a parameter of the target (resolved with
`hydra.utils.get_object`; the closest name suggested) and match its annotation. A key left out
keeps the constructor's default (the schema's `None` marks it absent: defaults are not repeated
here). A plug-in that has ranges of its own (a decoding strategy, a task weighting) checks them
in its constructor, which is public API; `self_check` builds it once to run them."""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, ClassVar

from hydra.utils import get_object, instantiate
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from distillab.config.messages import kinds, unknown
from distillab.errors import config_error_in

HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


class Node(BaseModel):
    """A node without a `_target_`: every key known, typed strictly (no "3" for 3)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def resolve(path: Any, key: str = "@._target_") -> Any:
    """The object at a dotted path, or a ValueError naming its key (the node's `_target_`)."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"{key}={path!r} must be a dotted path to a class or function")
    try:
        return get_object(path)
    except Exception as e:  # noqa: BLE001 - any import failure is a config error here
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise ValueError(f"{key}={path!r} cannot be imported ({reason})") from None


@lru_cache(maxsize=256)
def parameters(target: Any) -> tuple[dict[str, Any], bool]:
    """(parameter -> annotation, whether it takes any keyword) of a class or function."""
    if inspect.isclass(target):
        owner = next((k for k in target.__mro__ if "__init__" in vars(k)), object)
        if (
            owner is object
            or f"{owner.__module__}.{owner.__name__}" == "torch.nn.modules.module.Module"
        ):
            return {}, False  # no constructor of its own: takes no settings
    try:
        sig = inspect.signature(target, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        sig = inspect.signature(target)  # annotations it cannot evaluate are not checked
    except ValueError:
        return {}, True  # cannot tell: accept anything
    named = {
        n: p.annotation
        for n, p in sig.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return named, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


@lru_cache(maxsize=512)
def adapter(annotation: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(annotation, config=ConfigDict(strict=True, arbitrary_types_allowed=True))
    except Exception:  # noqa: BLE001 - an annotation pydantic cannot check is not checked
        return None


def check_value(key: str, value: Any, annotation: Any) -> None:
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return
    try:
        checker = adapter(annotation)
    except TypeError:  # unhashable annotation
        return
    if checker is None or isinstance(value, (dict, list)):
        return
    try:
        checker.validate_python(value)
    except ValidationError as e:
        raise ValueError(f"{key}={value!r} must be {kinds(e.errors(), annotation)}") from None


def check_signature(
    node: BaseModel,
    target: Any,
    extra: tuple = (),
    wired: dict | None = None,
    at: str = "@",
    owner: str | None = None,
) -> None:
    """Every key of `node` (at `at`) is a parameter of `target` (or in `extra`); values match
    its annotations."""
    params, any_kw = parameters(target)
    wired = wired or {}
    known = {f.alias or n for n, f in type(node).model_fields.items()}
    for k, v in node.model_dump(by_alias=True, exclude_unset=True).items():
        if k in HYDRA_KEYS or k in extra:
            continue
        if k in wired:
            raise ValueError(f"{at}.{k} cannot be set here: {wired[k]}")
        if k not in params and not any_kw:
            valid = [p for p in params if p not in wired] + list(extra)
            raise ValueError(unknown(f"{at}.{k}", v, valid, owner or node.target))
        if k in params and k not in known:
            check_value(f"{at}.{k}", v, params[k])


class Target(BaseModel):
    """A node with a `_target_`: the schema's keys typed and bounded, the rest checked against
    the target's signature. `WIRED`: parameters distillab sets itself (why); `EXTRA`: keys
    that are not parameters (e.g. a loss term's `weight`)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    target: str = Field(alias="_target_")
    WIRED: ClassVar[dict[str, str]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _signature(self) -> Target:
        check_signature(self, resolve(self.target), self.EXTRA, self.WIRED)
        return self

    def spec(self) -> dict:
        """The node as Hydra instantiates it: the keys set, `_target_` and Hydra's own."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude=set(self.EXTRA))


def self_check(node: dict, group: str, **call: Any) -> None:
    """Build a cheap plug-in once so that its constructor checks its own ranges; its error
    names `group.key`, rewritten to the node's place (`@`). `call`: what `_partial_` awaits."""
    try:
        built = instantiate(node)
        if call:
            built(**call)
    except Exception as e:
        cause = config_error_in(e)
        if cause is None:
            raise
        msg = str(cause)
        raise ValueError("@" + msg[len(group) :] if msg.startswith(group) else msg) from None
