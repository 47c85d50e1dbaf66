"""The HTTP app: `POST /v1/chat/completions` (OpenAI-compatible subset, `stream: true` as
server-sent events), `GET /v1/models` (the model card), `GET /health` (open), and the chat
page at `/`. Every `/v1` route needs a bearer key when the server has keys; errors are JSON in
the OpenAI API's shape (`{"error": {"message", "type", "code"}}`)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from distillab.config.serve import ServeConfig
from distillab.export.generate import Row, Sampling
from distillab.serve.batching import Batcher
from distillab.serve.engine import Engine
from distillab.serve.keys import ANONYMOUS, KeyRing, bearer
from distillab.serve.limits import Guard, RateLimiter, error_body, retry_after
from distillab.serve.schemas import ChatRequest, LimitError, check_limits, describe
from distillab.serve.stream import sse_chunks

STATIC = Path(__file__).parent / "static"
text_log = logging.getLogger("distillab.serve.text")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers


def create_app(engine: Engine, cfg: ServeConfig, keys: KeyRing) -> Any:
    """The ASGI app (the FastAPI app inside the body-limit and request-log middleware)."""
    batcher = Batcher(engine.model, cfg.max_batch, cfg.max_wait_ms / 1000)
    limiter = RateLimiter(cfg.rate_per_minute, cfg.rate_burst)
    seeds = np.random.default_rng(cfg.seed)
    model_id = cfg.model_name or model_name(engine.path)
    cap = min(cfg.max_tokens or engine.max_len, engine.max_len)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="distillab-serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> Response:
        return Response(error_body(e.status, e.message, e.kind), e.status, e.headers,
                        media_type="application/json")  # fmt: skip

    async def authorize(request: Request) -> str:  # async: a sync one hops to a thread
        if len(keys):
            found = keys.check(bearer(request.headers.get("authorization")) or "")
            if found is None:
                raise ApiError(401, "a valid API key is required (Authorization: Bearer KEY)",
                               "invalid_api_key", {"WWW-Authenticate": "Bearer"})  # fmt: skip
        else:
            found = ANONYMOUS
        request.state.key_id = found
        wait = limiter.take(found)
        if wait > 0:
            raise ApiError(429, f"rate limit: {cfg.rate_per_minute:g} requests per minute per key",
                           "rate_limit_exceeded", {"Retry-After": retry_after(wait)})  # fmt: skip
        return found

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": model_id}

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/chat.js")
    async def script() -> FileResponse:
        return FileResponse(STATIC / "chat.js", media_type="text/javascript")

    @app.get("/v1/models")
    async def models(key: str = Depends(authorize)) -> dict:
        card = {"id": model_id, "object": "model", "created": engine.card.get("created", 0),
                "owned_by": "distillab", "card": engine.card}  # fmt: skip
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request, key: str = Depends(authorize)) -> Response:
        try:
            req = ChatRequest.model_validate(json.loads(await request.body()))
            turns = check_limits(req, cfg.max_messages, cfg.max_message_chars, cap)
        except (ValueError, RecursionError) as e:  # JSON, types, limits
            message = describe(e) if isinstance(e, ValidationError) else str(e)
            if not isinstance(e, ValidationError | LimitError):
                message = f"the body is not valid JSON ({type(e).__name__})"
            raise ApiError(422, message, "invalid_request_error") from None
        src = engine.source(turns)
        temperature = cfg.temperature if req.temperature is None else req.temperature
        top_p = cfg.top_p if req.top_p is None else req.top_p
        sampling = None
        if temperature > 0:
            seed = req.seed if req.seed is not None else int(seeds.integers(2**63))
            sampling = Sampling(temperature, top_p, seed)
        limit = req.max_tokens or req.max_completion_tokens or cap
        job = await batcher.submit(Row(src, limit, sampling), stream=req.stream)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                "model": model_id}  # fmt: skip
        if cfg.log_text:
            text_log.info(json.dumps({"key_id": key, "id": meta["id"], "messages": turns}))
        if req.stream:
            return StreamingResponse(sse_chunks(job, engine, meta, cfg.log_text),
                                     media_type="text/event-stream")  # fmt: skip
        ids, stopped = await job.done
        reply = engine.reply(ids)
        if cfg.log_text:
            text_log.info(json.dumps({"key_id": key, "id": meta["id"], "reply": reply}))
        return JSONResponse({
            **meta, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "finish_reason": "stop" if stopped else "length"}],
            "usage": {"prompt_tokens": len(src), "completion_tokens": len(ids),
                      "total_tokens": len(src) + len(ids)},
        })  # fmt: skip

    return Guard(app, cfg.max_body_bytes)


def model_name(path: Path) -> str:
    """`<run name>/export` for `<run>/export`, else the directory's name."""
    path = Path(path).resolve()
    return f"{path.parent.name}/{path.name}" if path.name == "export" else path.name
