"""distillab-serve under load on loopback: replies/s and p50/p99 latency at 1, 4 and 16
concurrent clients, batched (`max_batch=16`) against one request at a time (`max_batch=1`),
then a soak run (16 clients, `--soak` seconds) that must see no error.

    python benchmarks/serve.py                       # a synthetic export, quickstart student size
    python benchmarks/serve.py --export runs/x/export --seconds 20 --soak 60

The synthetic export is an untrained model at the quickstart student's size (vocab 4000, emb
32, hidden 64) with a word-level tokenizer: it rarely says EOS, so every reply is `max_tokens`
long and the work per request is fixed. Each client is an asyncio task with its own keep-alive
connection (aiohttp, whose client costs a sixth of httpx's CPU per request, so the
load generator is not what is measured), sending one request after another; the server is a `distillab-serve`
subprocess (onnxruntime on one thread). Target: batched replies/s at 16 clients >= 3x the
one-at-a-time server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench"
WORDS = "hello how are you fine thanks what about the weather today sunny rain cold".split()


def synthetic_export(out: Path, vocab: int, emb: int, hidden: int, max_len: int) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    from distillab.export.onnx import export_model
    from distillab.models import Seq2Seq

    class WordTokenizer:
        def save_pretrained(self, path: str) -> None:
            Path(path).mkdir(parents=True, exist_ok=True)
            words = {w: i for i, w in enumerate("[PAD] [UNK] [BOS] [EOS] <self> <other>".split())}
            words.update({f"w{i}": i for i in range(6, vocab)})
            words.update({w: 6 + i for i, w in enumerate(WORDS)})
            tok = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
            tok.pre_tokenizer = pre_tokenizers.Whitespace()
            tok.save(str(Path(path) / "tokenizer.json"))

    torch.manual_seed(0)
    model = Seq2Seq(vocab, 0, emb_dim=emb, hidden_size=hidden).eval()
    settings = dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3, self_id=4, other_id=5,
                    context_turns=3, max_source_len=64, max_len=max_len)  # fmt: skip
    return export_model(model, out, WordTokenizer(), settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(export: Path, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "distillab.serve.cli", f"ckpt={export}", f"port={port}",
           f"max_batch={max_batch}", f"max_wait_ms={max_wait_ms}", "rate_per_minute=1e9",
           "rate_burst=1000000"]  # fmt: skip
    env = {**os.environ, "DISTILLAB_API_KEYS": KEY, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


async def load(url: str, clients: int, seconds: float, max_tokens: int) -> dict:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {KEY}"}
    timeout = aiohttp.ClientTimeout(total=60)

    async def client(i: int) -> None:
        nonlocal errors
        # its own session: one keep-alive connection per client
        async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as c:
            n = 0
            while time.perf_counter() < stop:
                text = " ".join(WORDS[(i + n + k) % len(WORDS)] for k in range(6))
                body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
                t0 = time.perf_counter()
                try:
                    async with c.post("/v1/chat/completions", json=body) as r:
                        await r.read()
                        ok = r.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):  # noqa: UP041 - Python 3.10
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
                n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1e3 if latencies else np.array([np.nan])
    return {"clients": clients, "replies": len(latencies), "errors": errors,
            "replies_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--export", type=Path, help="an export directory (default: synthetic)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--emb", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    ap.add_argument("--soak", type=float, default=60.0, help="16-client soak run (0: none)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = args.export or synthetic_export(Path(tmp) / "export", args.vocab, args.emb,
                                                 args.hidden, args.max_tokens)  # fmt: skip
        results: dict = {"setup": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
        for name, max_batch in (("one_at_a_time", 1), ("batched", 16)):
            proc, url = start(export, max_batch, args.max_wait_ms)
            try:
                asyncio.run(load(url, 1, 1.0, args.max_tokens))  # warm-up
                rows = [
                    asyncio.run(load(url, n, args.seconds, args.max_tokens)) for n in (1, 4, 16)
                ]
                if name == "batched" and args.soak > 0:
                    results["soak"] = asyncio.run(load(url, 16, args.soak, args.max_tokens))
            finally:
                proc.send_signal(signal.SIGTERM)
                results.setdefault("exit_status", {})[name] = proc.wait(60)
            results["runs"][name] = rows
            for r in rows:
                print(f"{name:14s} clients {r['clients']:2d}: {r['replies_per_s']:7.1f} replies/s, "
                      f"p50 {r['p50_ms']:7.2f} ms, p99 {r['p99_ms']:7.2f} ms, errors {r['errors']}")  # fmt: skip
    b16 = results["runs"]["batched"][2]["replies_per_s"]
    results["ratio_16_clients_batched_over_one_at_a_time"] = round(
        b16 / results["runs"]["one_at_a_time"][2]["replies_per_s"], 2)  # fmt: skip
    results["ratio_16_clients_batched_over_1_client"] = round(
        b16 / results["runs"]["one_at_a_time"][0]["replies_per_s"], 2)  # fmt: skip
    print(json.dumps({k: v for k, v in results.items() if k.startswith(("ratio", "soak", "exit"))}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
