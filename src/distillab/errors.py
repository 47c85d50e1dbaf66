"""Errors that stop a run before any work starts, with a message a researcher can act on."""

from __future__ import annotations

from typing import Any


class DistillabError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with status 2."""


class ConfigError(DistillabError):
    """A config value is missing, of the wrong type or out of its allowed range."""


class DataError(DistillabError):
    """Input data cannot be used (names the file and line where there is one)."""


def check_range(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise ConfigError naming `key` and the allowed range unless low <= value <= high."""
    lo_br, hi_br = ("[" if low_inclusive else "("), ("]" if high_inclusive else ")")
    allowed = f"{lo_br}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_br}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} must be a number in {allowed}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed}")


def check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise ConfigError naming `key` and the allowed values unless value is one of them."""
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {list(allowed)}")


def config_error_in(e: BaseException) -> ConfigError | None:
    """The `ConfigError` behind `e` (itself or a `__cause__`): Hydra's `instantiate` wraps a
    constructor's error in its own, whose message names the target instead of the key."""
    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, ConfigError):
        cause = cause.__cause__
    return cause
