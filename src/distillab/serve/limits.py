"""Per-key rate limits, the request body's size limit and the request log.

`RateLimiter`: a token bucket per key id (`rate_per_minute` refilled continuously, at most
`burst` at once); a request finding it empty is refused with the seconds until a token is back
(429 with `Retry-After`). `Guard`: ASGI middleware around the whole app that refuses a body over
`max_body_bytes` with 413 as soon as it is known (from `Content-Length`, or once a chunked body
grows past it, before the app sees any of it) and writes one log line per request: time, key id,
request and response bytes, status and latency; never a key, and the text only in the route
when `log_text` is on.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

log = logging.getLogger("distillab.serve.access")


class RateLimiter:
    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, time)
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if `key` may make a request now (a token is spent), else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            tokens, then = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self.buckets[key] = (tokens - 1.0, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def error_body(status: int, message: str, kind: str) -> bytes:
    """The JSON of an error, in the OpenAI API's shape."""
    return json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


class Guard:
    """ASGI middleware: body size limit (413) and the request log."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = {"in": 0, "out": 0, "status": 0}
        scope.setdefault("state", {})
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await self.refuse(send, seen)
            self.record(scope, seen, start)
            return

        body = b""
        more = True
        while more:  # the whole body first (it is small): over the limit, the app never runs
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self.refuse(send, seen)
                seen["in"] = len(body)
                self.record(scope, seen, start)
                return
        seen["in"] = len(body)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def counted_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, counted_send)
        finally:
            self.record(scope, seen, start)

    async def refuse(self, send: Any, seen: dict) -> None:
        body = error_body(413, f"request body over {self.max_body} bytes", "request_too_large")
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        seen["status"], seen["out"] = 413, len(body)

    @staticmethod
    def record(scope: dict, seen: dict, start: float) -> None:
        log.info(
            json.dumps(
                {
                    "time": round(time.time(), 3),
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "key_id": scope["state"].get("key_id"),
                    "request_bytes": seen["in"],
                    "response_bytes": seen["out"],
                    "status": seen["status"] or 500,
                    "latency_ms": round((time.perf_counter() - start) * 1e3, 2),
                }
            )
        )
