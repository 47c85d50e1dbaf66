"""The serve tests' model: a tiny run (synthetic dialogues) exported by its compression step
(`compress=quantize`: ONNX fp32 and int8, the model card), trained once per test session; and
servers on free loopback ports (uvicorn in a thread, the app as `distillab-serve` builds it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from distillab.config.serve import ServeConfig
from distillab.serve.keys import KeyRing
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg, synthetic_conversations, write_jsonl

KEYS = ["sk-test-alpha-0123456789", "sk-test-beta-9876543210"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-run")
    data = write_jsonl(tmp / "d.jsonl", synthetic_conversations(60))
    overrides = ["experiment=student", "data=jsonl", f"data.path={data}", *TINY, "~logger",
                 "trainer.max_steps=30", "compress=quantize", "compress.eval_inputs=4"]  # fmt: skip
    run_job(compose_cfg(overrides, tmp))
    return tmp / "run"


@pytest.fixture(scope="session")
def export_dir(run_dir) -> Path:
    return run_dir / "export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(export_dir: Path, **overrides) -> ServeConfig:
    base = dict(ckpt=str(export_dir), host="127.0.0.1", port=free_port(), max_batch=16,
                max_wait_ms=5.0, rate_per_minute=60_000.0, rate_burst=10_000)  # fmt: skip
    return ServeConfig(**{**base, **overrides})


@contextlib.contextmanager
def running(engine, cfg: ServeConfig, keys: list[str] = KEYS) -> Iterator[tuple[str, Any]]:
    """A server for `engine` under `cfg` on loopback (uvicorn in a thread); yields its URL and
    its batcher."""
    import uvicorn

    from distillab.serve.app import create_app

    app = create_app(engine, cfg, KeyRing(keys))
    server = uvicorn.Server(
        uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{cfg.host}:{cfg.port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield url, app.app.state.batcher
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def engine(export_dir):
    from distillab.serve.engine import Engine

    return Engine(export_dir)


@pytest.fixture(scope="module")
def server(engine, export_dir) -> Iterator[str]:
    with running(engine, settings(export_dir)) as (url, _):
        yield url


def auth(key: str = KEYS[0]) -> dict:
    return {"Authorization": f"Bearer {key}"}


def chat(url: str, messages: list[dict], key: str = KEYS[0], **body) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"messages": messages, **body},
                      headers=auth(key), timeout=30)  # fmt: skip
