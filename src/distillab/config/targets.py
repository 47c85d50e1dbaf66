"""Nodes chosen by `_target_` (plug-ins: one file plus one YAML). The group's schema types and
bounds the keys it knows; any other key must be a parameter of the target (resolved with
`hydra.utils.get_object`; the closest name suggested) and match its annotation. A known key
left at `None` is absent: the constructor's default applies (defaults are not repeated here).
A plug-in with ranges of its own (a decoding strategy, a task weighting) checks them in its
constructor, public API; `self_check` builds it once to run them."""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, ClassVar

from hydra.utils import get_object, instantiate
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from distillab.config.messages import kinds, unknown
from distillab.errors import config_error_in

HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
NN_MODULE = "torch.nn.modules.module.Module"


class Node(BaseModel, extra="forbid", strict=True, populate_by_name=True):
    """A node without a `_target_`: every key known, typed strictly (no "3" for 3)."""


def resolve(path: Any, key: str = "@._target_") -> Any:
    """The object at a dotted path, or a ValueError naming its key."""
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
        if owner is object or f"{owner.__module__}.{owner.__name__}" == NN_MODULE:
            return {}, False  # no constructor of its own: takes no settings
    try:
        sig = inspect.signature(target, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        sig = inspect.signature(target)  # annotations it cannot evaluate are not checked
    except ValueError:
        return {}, True  # cannot tell: accept anything
    ps = sig.parameters.values()
    named = {p.name: p.annotation for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return named, any(p.kind is p.VAR_KEYWORD for p in ps)


@lru_cache(maxsize=512)
def adapter(annotation: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(annotation, config=ConfigDict(strict=True, arbitrary_types_allowed=True))
    except Exception:  # noqa: BLE001 - an annotation pydantic cannot check is not checked
        return None


def check_value(key: str, value: Any, annotation: Any) -> None:
    if isinstance(annotation, str) or annotation is inspect.Parameter.empty:
        return
    try:
        checker = adapter(annotation)
        if checker is not None and not isinstance(value, (dict, list)):
            checker.validate_python(value)
    except TypeError:  # an unhashable annotation: not checked
        return
    except ValidationError as e:
        what = kinds(e.errors(), annotation)
        if what.startswith("one of") and " or " not in what:  # choices, null not among them
            raise ValueError(f"{key}={value!r} is not allowed; choose {what}") from None
        raise ValueError(f"{key}={value!r} must be {what}") from None


def check_signature(node: BaseModel, target: Any, wired: dict, at: str, owner: str) -> None:
    """Every key of `node` (at `at`) is a parameter of `target` or a schema key it declares
    (`EXTRA`); wired keys are refused (why); values match the parameter's annotation."""
    params, any_kw = parameters(target)
    extra = getattr(node, "EXTRA", ())
    known = {f.alias or n for n, f in type(node).model_fields.items()}
    for k, v in node.model_dump(by_alias=True, exclude_unset=True).items():
        if k in wired:
            raise ValueError(f"{at}.{k} cannot be set here: {wired[k]}")
        if k not in params and k not in HYDRA_KEYS + extra and not any_kw:
            valid = [p for p in params if p not in wired] + list(extra)
            raise ValueError(unknown(f"{at}.{k}", v, valid, owner))
        if k in params and k not in known:
            check_value(f"{at}.{k}", v, params[k])


class Target(BaseModel, extra="allow", strict=True, populate_by_name=True):
    """A node with a `_target_`. `WIRED`: parameters distillab sets itself (why); `EXTRA`:
    keys that are not parameters (a loss term's `weight`)."""

    target: str = Field(alias="_target_")
    WIRED: ClassVar[dict[str, str]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _signature(self) -> Target:
        check_signature(self, resolve(self.target), self.WIRED, "@", self.target)
        return self

    def spec(self) -> dict:
        """The node as Hydra instantiates it: the keys set, `_target_` and Hydra's own."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude=set(self.EXTRA))


def self_check(node: dict, group: str, **call: Any) -> None:
    """Build a cheap plug-in once so that its constructor checks its ranges; its error names
    `group.key`, rewritten to the node's place. `call`: what a `_partial_` node awaits."""
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
