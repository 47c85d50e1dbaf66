"""`distillab-serve`'s config (`conf/serve.yaml`): types and ranges of every key, checked
before the model is loaded or a port opened; and the rule that a server reachable from other
machines needs API keys."""

from __future__ import annotations

import ipaddress
from typing import Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, Field, ValidationError

from distillab.config.messages import raise_one_line
from distillab.config.targets import Node
from distillab.errors import ConfigError

LOOPBACK_NAMES = ("localhost",)


class ServeConfig(Node):
    model_config = ConfigDict(title="distillab-serve")
    ckpt: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    keys: str | None = None
    keys_env: str | None = None
    precision: Literal["fp32", "int8"] = "fp32"
    threads: int = Field(1, ge=1)
    model_name: str | None = None
    max_batch: int = Field(16, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=60_000)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    max_body_bytes: int = Field(65536, ge=256)
    max_messages: int = Field(64, ge=1)
    max_message_chars: int = Field(4000, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    rate_per_minute: float = Field(600.0, gt=0)
    rate_burst: int = Field(60, ge=1)
    log_text: bool = False
    graceful_timeout_s: float | None = Field(30.0, gt=0)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_serve(cfg: DictConfig) -> ServeConfig:
    """The checked config, or a one-line ConfigError."""
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError("ckpt is required, e.g. distillab-serve ckpt=PATH (an export directory)")
    try:
        return ServeConfig.model_validate(OmegaConf.to_container(cfg, resolve=True))
    except ValidationError as e:
        raise_one_line(e, ServeConfig)
