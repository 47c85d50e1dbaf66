"""`distillab-serve` as a process: refuses unsafe or bad settings (exit 2, one line, before the
model loads), answers as `distillab-chat` does, serves a checkpoint, and on SIGTERM finishes
the request in flight, stops accepting, and exits 0 without having imported torch."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from distillab.chat.app import chat as chat_loop
from distillab.chat.app import load_config
from distillab.chat.replier import load_replier
from distillab.chat.session import Session
from tests.serve.conftest import KEYS, auth, chat, free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "distillab.serve.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def run_cli(args: list[str], keys: str = "") -> subprocess.CompletedProcess:
    env = {**ENV, "DISTILLAB_API_KEYS": keys}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["ckpt=/no/such", "host=0.0.0.0"], "host=0.0.0.0 is not a loopback address"),
        (["ckpt=/no/such"], "ckpt=/no/such: no such export directory"),
        (["ckpt=/no/such", "keys=/no/keys"], "keys=/no/keys: cannot be read"),
        (["ckpt=/no/such", "max_batch=0"], "max_batch=0"),
        (["ckpt=/no/such", "precision=fp16"], "precision"),
        (["port=80"], "ckpt is required"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(args, needle):
    proc = run_cli(args)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert (
        len(lines) == 1 and lines[0].startswith("distillab-serve: error: ") and needle in lines[0]
    )


def test_keys_from_the_environment_allow_a_public_host(tmp_path):
    """With keys (here from the environment) a non-loopback host passes the check; the next
    problem reported is the missing model, so the key check ran first."""
    proc = run_cli(["ckpt=/no/such", "host=0.0.0.0"], keys="k1,k2")
    assert proc.returncode == 2 and "no such export directory" in proc.stderr


def test_greedy_replies_equal_distillab_chats(server, export_dir):
    lines = ["hello how are you", "what about the weather today", "fine \x1b thanks"]
    out = io.StringIO()
    cfg = load_config([f"ckpt={export_dir}", "decoding=greedy"])
    session = Session(load_replier(cfg["ckpt"], cfg["decoding"], cfg.get("max_len")))
    chat_loop(session, io.StringIO("\n".join(lines) + "\n"), out, io.StringIO(), False)
    replies = out.getvalue().splitlines()
    assert len(replies) == 3
    messages: list[dict] = []
    for line, expected in zip(lines, replies, strict=True):
        messages.append({"role": "user", "content": line})
        got = chat(server, messages).json()["choices"][0]["message"]["content"]
        assert got == expected
        messages.append({"role": "assistant", "content": got})


def start(args: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, *args, f"port={port}"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_and_exits_0(export_dir, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# the test's keys\n{KEYS[0]}\n\n{KEYS[1]}\n")
    port = free_port()
    # a batch waits 2 s for company: the request is in flight when SIGTERM arrives
    proc = start([f"ckpt={export_dir}", f"keys={keys}", "max_wait_ms=2000"], port)
    url = f"http://127.0.0.1:{port}"
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert "libtorch" not in maps  # the export path never imported torch
    got = {}
    asker = threading.Thread(
        target=lambda: got.update(r=chat(url, [{"role": "user", "content": "hello"}]))
    )
    asker.start()
    time.sleep(0.7)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.TransportError):  # no longer accepting
        httpx.get(url + "/health", timeout=2)
    asker.join(30)
    assert proc.wait(30) == 0
    log = proc.stdout.read()
    assert got["r"].status_code == 200, log
    assert "content" in got["r"].json()["choices"][0]["message"]
    assert KEYS[0] not in log and "Traceback" not in log


@pytest.mark.slow
def test_a_checkpoint_is_served_as_its_export(run_dir, server, tmp_path):
    port = free_port()
    proc = start([f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}"], port)  # no keys: loopback
    try:
        messages = [{"role": "user", "content": "hello how are you"}]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"messages": messages},
                       timeout=30)  # fmt: skip
        card = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()["data"][0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    exported = chat(server, messages).json()["choices"][0]["message"]["content"]
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == exported
    assert card["card"]["data"]["fingerprint"] and card["card"]["metrics"] is not None
    assert httpx.get(f"{server}/v1/models", headers=auth()).status_code == 200
