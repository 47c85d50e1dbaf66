"""One key's type, range or choices (`Field`), and nodes without a `_target_` checked
against a table of them: the primitives every other check builds on."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distillab.errors import ConfigError, check_choice, check_range


@dataclass(frozen=True)
class Field:
    kind: type | None = None  # int, float (any number), bool, str, dict, list; None: anything
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple | None = None
    null: bool = False  # None allowed
    required: bool = True  # in schemas: the key must be present

    def check(self, key: str, value: Any) -> None:
        if value is None:
            if not self.null:
                raise ConfigError(f"{key}=null is not allowed; it must be {self.describe()}")
            return
        if self.kind is not None and not is_a(value, self.kind):
            raise ConfigError(f"{key}={value!r} must be {self.describe()}")
        if self.choices is not None:
            check_choice(key, value, self.choices)
        if self.low is not None or self.high is not None:
            check_range(
                key,
                value,
                self.low,
                self.high,
                low_inclusive=self.low_inclusive,
                high_inclusive=self.high_inclusive,
            )

    def describe(self) -> str:
        what = KIND_NAMES.get(self.kind, "set")
        return what + (" or null" if self.null else "")


KIND_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a mapping",
    list: "a list",
}


def is_a(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def integer(low=None, high=None, **kw) -> Field:
    return Field(int, low, high, **kw)


def number(low=None, high=None, **kw) -> Field:
    return Field(float, low, high, **kw)


def fraction(**kw) -> Field:  # [0, 1)
    return Field(float, 0.0, 1.0, high_inclusive=False, **kw)


def boolean(**kw) -> Field:
    return Field(bool, **kw)


def string(choices: tuple | None = None, **kw) -> Field:
    return Field(str, choices=choices, **kw)


def mapping(**kw) -> Field:
    return Field(dict, **kw)


def listing(**kw) -> Field:
    return Field(list, **kw)


def is_node(value: Any) -> bool:
    return isinstance(value, (dict, list))


def unknown_key(key: str, value: Any, valid: list[str], owner: str) -> ConfigError:
    """`key` is not a setting of `owner`: suggest the closest valid names (difflib)."""
    *parent, name = key.split(".")
    prefix = ".".join(parent) + "." if parent else ""
    shown = key if is_node(value) else f"{key}={value!r}"
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(prefix + c for c in close) + "?"
    else:
        hint = "valid keys: " + ", ".join(sorted(valid))
    return ConfigError(f"{shown} is not a setting of {owner}; {hint}")


def check_fields(key: str, node: Mapping, fields: Mapping[str, Field]) -> None:
    """Ranges and choices of the keys present (target nodes: their defaults are the code's)."""
    for k, f in fields.items():
        if k in node:
            f.check(f"{key}.{k}", node[k])


def check_schema(key: str, node: Any, schema: Mapping[str, Field], what: str) -> None:
    """A node without a `_target_`: known keys, required keys present, each field valid."""
    if not isinstance(node, dict):
        raise ConfigError(f"{key}={node!r} must be a mapping ({what} settings)")
    prefix = f"{key}." if key else ""
    for k, v in node.items():
        if k not in schema:
            raise unknown_key(prefix + k, v, list(schema), what)
    for k, f in schema.items():
        if k in node:
            f.check(prefix + k, node[k])
        elif f.required:
            raise ConfigError(f"{prefix}{k} is missing ({what} needs it)")
