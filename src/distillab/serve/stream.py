"""`stream: true`: the reply as server-sent events in the OpenAI API's chunk format. Each
decoded token extends the text; a chunk carries what was added since the last one (the text is
decoded from all ids so far, and held back while it ends inside a character whose bytes
span tokens), then a
last chunk with the finish reason and `data: [DONE]`. The concatenated pieces are the
non-streamed reply."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from distillab.serve.batching import Job

text_log = logging.getLogger("distillab.serve.text")


def event(meta: dict, delta: dict, finish: str | None = None) -> str:
    chunk = {**meta, "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(chunk)}\n\n"


async def sse_chunks(job: Job, engine: Any, meta: dict, log_text: bool) -> AsyncIterator[str]:
    yield event(meta, {"role": "assistant", "content": ""})
    ids: list[int] = []
    sent = ""
    eos = engine.model.eos_id
    while (tok := await job.tokens.get()) is not None:
        if tok == eos:
            continue
        ids.append(tok)
        text = engine.text(ids)
        if text.endswith("\ufffd"):  # a character's bytes split across tokens: wait for all
            continue
        if text.startswith(sent) and len(text) > len(sent):
            yield event(meta, {"content": text[len(sent) :]})
            sent = text
    final_ids, stopped = await job.done
    text = engine.reply(final_ids)
    if text.startswith(sent) and len(text) > len(sent):
        yield event(meta, {"content": text[len(sent) :]})
    if log_text:
        text_log.info(json.dumps({"id": meta["id"], "reply": text}))
    yield event(meta, {}, "stop" if stopped else "length")
    yield "data: [DONE]\n\n"
