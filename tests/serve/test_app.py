"""distillab-serve over real loopback HTTP: the auth matrix, limits as JSON errors, the model
card, batching, sampling, streaming, the OpenAI client, and the request log."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest

from tests.serve.conftest import KEYS, auth, chat, running, settings

HELLO = [{"role": "user", "content": "hello how are you"}]


@pytest.mark.parametrize(
    "headers,status",
    [
        ({}, 401),
        ({"Authorization": "Bearer sk-wrong"}, 401),
        ({"Authorization": f"Bearer {KEYS[0]}x"}, 401),  # a key with a suffix is another key
        ({"Authorization": f"Basic {KEYS[0]}"}, 401),
        ({"Authorization": "Bearer"}, 401),
        (auth(KEYS[0]), 200),
        (auth(KEYS[1]), 200),
    ],
)
def test_auth_matrix(server, headers, status):
    for method, path, body in (("POST", "/v1/chat/completions", {"messages": HELLO}),
                               ("GET", "/v1/models", None)):  # fmt: skip
        r = httpx.request(method, server + path, json=body, headers=headers, timeout=30)
        assert r.status_code == status, r.text
        if status == 401:
            assert r.json()["error"]["type"] == "invalid_api_key"
            assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server + "/health").json()["status"] == "ok"  # open


def test_reply_and_usage(server, engine):
    r = chat(server, HELLO)
    assert r.status_code == 200, r.text
    body = r.json()
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(
        choice["message"]["content"], str
    )
    assert choice["finish_reason"] in ("stop", "length")
    assert 1 <= body["usage"]["completion_tokens"] <= engine.max_len
    assert body["usage"]["prompt_tokens"] == len(engine.source([("user", "hello how are you")]))


@pytest.mark.parametrize(
    "body,status,needle",
    [
        (b"{not json", 422, "not valid JSON"),
        (b"[1, 2]", 422, "body"),
        (json.dumps({"messages": []}).encode(), 422, "messages"),
        (json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(), 422, "content"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), 422, "role"),
        (json.dumps({"messages": HELLO, "max_tokens": "5"}).encode(), 422, "max_tokens"),
        (json.dumps({"messages": HELLO, "max_tokens": 10_000}).encode(), 422, "at most"),
        (json.dumps({"messages": HELLO, "temperature": 3}).encode(), 422, "temperature"),
        (json.dumps({"messages": HELLO * 65}).encode(), 422, "at most 64"),
        (json.dumps({"messages": [{"role": "user", "content": "a " * 2001}]}).encode(), 422,
         "characters"),
        (json.dumps({"messages": [{"role": "user", "content": "\x00\x1b\u200b"}]}).encode(), 422,
         "empty"),
        (json.dumps({"messages": [*HELLO, {"role": "assistant", "content": "x"}]}).encode(),
         422, "last message"),
        (json.dumps({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}
         ).encode(), 422, "content[1]: a part of type 'image_url'"),
        (json.dumps({"messages": [{"role": "user", "content": [{"type": "text"}]}]}).encode(),
         422, "content[0]: a text part without its 'text'"),
        (b"[" * 100_000, 413, "bytes"),
    ],
)  # fmt: skip
def test_bad_requests_are_json_errors(server, body, status, needle):
    r = httpx.post(server + "/v1/chat/completions", content=body, headers=auth(), timeout=30)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_a_chunked_body_over_the_limit_is_413(server):
    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    r = httpx.post(server + "/v1/chat/completions", content=chunks(), headers=auth(), timeout=30)
    assert r.status_code == 413


def test_model_card_is_served(server, run_dir):
    r = httpx.get(server + "/v1/models", headers=auth(), timeout=30)
    (model,) = r.json()["data"]
    card = model["card"]
    assert model["id"] == "run/export" and card["format"] == "distillab-model-card-v1"
    assert card == json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["compression"] == json.loads((run_dir / "compression.json").read_text())
    assert card["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert (
        card["data"]["fingerprint"]
        and card["data"]["fingerprint"] == card["data"]["run"]["fingerprint"]
    )
    assert card["config"]["data"]["max_target_len"] == 12 and "git_commit" in card


def test_sampling_is_seeded_and_temperature_zero_is_greedy(server):
    body = {"max_tokens": 8, "temperature": 1.5, "top_p": 0.95}
    a = [chat(server, HELLO, seed=s, **body).json()["choices"][0]["message"]["content"]
         for s in (1, 1, 2, 3, 4)]  # fmt: skip
    assert a[0] == a[1] and len(set(a[1:])) > 1
    greedy = {chat(server, HELLO, temperature=0).json()["choices"][0]["message"]["content"]
              for _ in range(2)}  # fmt: skip
    assert len(greedy) == 1


def test_concurrent_requests_are_batched_and_answer_as_alone(engine, export_dir):
    cfg = settings(export_dir, max_batch=8, max_wait_ms=300.0)
    prompts = [f"hello {w} are you" for w in ("how", "what", "where", "fine", "the", "cold")]
    with running(engine, cfg) as (url, batcher):
        alone = [chat(url, [{"role": "user", "content": p}]).json() for p in prompts]
        before = batcher.batches
        results: list = [None] * len(prompts)

        def ask(i):
            results[i] = chat(url, [{"role": "user", "content": prompts[i]}]).json()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    text = lambda b: b["choices"][0]["message"]["content"]  # noqa: E731
    assert [text(r) for r in results] == [text(a) for a in alone]  # batched = one at a time
    assert batcher.batches - before < len(prompts)  # some were decoded together


def test_streamed_reply_is_the_reply(server):
    plain = chat(server, HELLO).json()["choices"][0]["message"]["content"]
    with httpx.stream("POST", server + "/v1/chat/completions", headers=auth(), timeout=30,
                      json={"messages": HELLO, "stream": True}) as r:  # fmt: skip
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == plain


def test_openai_client_gets_a_reply_and_a_stream(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server + "/v1", api_key=KEYS[1], max_retries=0)
    (model,) = client.models.list().data
    done = client.chat.completions.create(model=model.id, messages=HELLO, max_tokens=6)
    reply = done.choices[0].message.content
    assert isinstance(reply, str) and done.usage.completion_tokens <= 6
    stream = client.chat.completions.create(model=model.id, messages=HELLO, max_tokens=6,
                                            stream=True)  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in stream) == reply
    bad = openai.OpenAI(base_url=server + "/v1", api_key="sk-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=model.id, messages=HELLO)


def test_rate_limit_is_429_with_retry_after(engine, export_dir):
    cfg = settings(export_dir, rate_per_minute=2.0, rate_burst=2)
    with running(engine, cfg) as (url, _):
        codes = [httpx.get(url + "/v1/models", headers=auth(), timeout=30) for _ in range(3)]
        other = httpx.get(url + "/v1/models", headers=auth(KEYS[1]), timeout=30)
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert int(codes[2].headers["retry-after"]) >= 1
    assert codes[2].json()["error"]["type"] == "rate_limit_exceeded"
    assert other.status_code == 200  # per key


def test_request_log_has_key_ids_and_sizes_not_text(server, caplog):
    secret = "purple elephant"
    with caplog.at_level(logging.INFO, logger="distillab.serve"):
        chat(server, [{"role": "user", "content": secret}])
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "distillab.serve.access"
    ]
    (line,) = [x for x in lines if x["path"] == "/v1/chat/completions"]
    assert line["status"] == 200 and line["request_bytes"] > 0 and line["response_bytes"] > 0
    assert len(line["key_id"]) == 12 and line["latency_ms"] > 0
    assert all(
        secret not in r.getMessage() and KEYS[0] not in r.getMessage() for r in caplog.records
    )


def test_log_text_records_the_dialogue(engine, export_dir, caplog):
    with running(engine, settings(export_dir, log_text=True)) as (url, _):
        with caplog.at_level(logging.INFO, logger="distillab.serve"):
            chat(url, [{"role": "user", "content": "purple elephant"}])
    assert any("purple elephant" in r.getMessage() for r in caplog.records)


def test_content_given_as_text_parts_is_read_as_the_text_they_join(server):
    """OpenAI clients may send content as a list of parts; text parts are joined by spaces."""
    from distillab.serve.schemas import ChatRequest, check_limits

    parts = [{"type": "text", "text": "hello how"}, {"type": "text", "text": "are you"}]
    listed = ChatRequest.model_validate({"messages": [{"role": "user", "content": parts}]})
    assert check_limits(listed, 64, 2000, 64) == [("user", "hello how are you")]
    a = chat(server, [{"role": "user", "content": parts}], temperature=0)
    b = chat(server, HELLO, temperature=0)
    assert a.status_code == b.status_code == 200, a.text
    assert a.json()["choices"][0]["message"] == b.json()["choices"][0]["message"]
    assert a.json()["usage"] == b.json()["usage"]
