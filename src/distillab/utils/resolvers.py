"""OmegaConf resolvers used by conf/: registered once, on import of the entry point."""

from __future__ import annotations

import os
import uuid

from omegaconf import OmegaConf


def _wandb_offline() -> bool:
    """W&B stays offline unless a key is configured (env var or a `wandb login` netrc entry)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online":
        return False
    netrc = os.path.expanduser("~/.netrc")
    return not (os.path.exists(netrc) and "api.wandb.ai" in open(netrc).read())


def register() -> None:
    # use_cache: Hydra copies resolver caches into every job of a sweep (as for `now`), so all
    # jobs agree on the sweep directory's id.
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", _wandb_offline)
