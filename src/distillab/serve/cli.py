"""`distillab-serve ckpt=PATH [port=N] [keys=FILE] [host=...]`: serve a model over HTTP.

Arguments are Hydra overrides of `conf/serve.yaml` (composed with Hydra's compose API, as
`distillab-chat`). A bad argument, an unreadable key file, or a non-loopback `host` without
keys is one line and exit status 2, before the model is loaded. SIGTERM or Ctrl-C: the server
stops accepting connections, lets the requests in flight finish (up to
`graceful_timeout_s`), and exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig

from distillab.config.serve import ServeConfig, is_loopback, validate_serve
from distillab.errors import ConfigError, DistillabError
from distillab.serve.keys import KeyRing, load_keys

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def load_config(overrides: list[str]) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("serve", overrides=overrides)
    except HydraException as e:
        raise ConfigError(str(e).strip().splitlines()[0]) from None


def checked(argv: list[str]) -> tuple[ServeConfig, KeyRing]:
    """The config and keys, or a ConfigError; nothing loaded yet."""
    cfg = validate_serve(load_config(argv))
    keys = load_keys(cfg.keys, cfg.keys_env)
    if not len(keys) and not is_loopback(cfg.host):
        raise ConfigError(
            f"host={cfg.host} is not a loopback address and no API keys are set: give "
            f"keys=FILE (one key per line) or ${cfg.keys_env}, or serve on host=127.0.0.1"
        )
    if not Path(cfg.ckpt).exists():
        raise ConfigError(f"ckpt={cfg.ckpt}: no such export directory or checkpoint file")
    return cfg, keys


def serve(cfg: ServeConfig, keys: KeyRing, export_dir: Path) -> None:
    import uvicorn

    from distillab.serve.app import create_app
    from distillab.serve.engine import Engine

    engine = Engine(export_dir, cfg.precision, cfg.threads)
    app = create_app(engine, cfg, keys)
    config = uvicorn.Config(
        app, host=cfg.host, port=cfg.port, access_log=False, log_level="info",
        timeout_graceful_shutdown=cfg.graceful_timeout_s,
    )  # fmt: skip
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; a handler
    # of our own receives it then, so the process ends with status 0 instead of dying by it
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    auth = f"{len(keys)} API key(s)" if len(keys) else "no API keys (loopback only)"
    logging.getLogger("distillab.serve").info(
        f"distillab-serve: {engine.path} on http://{cfg.host}:{cfg.port} ({auth})"
    )
    uvicorn.Server(config).run()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        cfg, keys = checked(argv)
        with tempfile.TemporaryDirectory(prefix="distillab-serve-") as tmp:
            path = Path(cfg.ckpt)
            if path.is_file():
                from distillab.serve.checkpoint import export_checkpoint

                path = export_checkpoint(path, Path(tmp))
            serve(cfg, keys, path)
    except DistillabError as e:
        sys.stderr.write(f"distillab-serve: error: {e}\n")
        return 2
    return 0


def cli() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    cli()
