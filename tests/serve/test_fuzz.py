"""At least 500 generated bad bodies (random JSON, wrong types, huge and unicode strings,
control characters, lone surrogates, deep nesting) get a 4xx JSON error or a reply, never a
5xx, and the server answers /health afterwards. Hypothesis generates them (derandomized: the
same bodies on every run)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.conftest import auth

CONTROL = st.characters(codec="utf-8") | st.sampled_from(
    list("\x00\x07\x1b\u200b\u202e\ud800\ufeff")
)
TEXT = st.text(CONTROL, max_size=40) | st.just("é" * 5000) | st.just("\x00" * 300)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSONS = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)  # fmt: skip
ROLE = st.sampled_from(["user", "assistant", "system", "tool", "", "USER"]) | JSONS
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": TEXT | JSONS})
FIELDS = {
    "messages": st.lists(MESSAGE, max_size=5) | JSONS,
    "max_tokens": st.integers(-5, 10**30) | JSONS,
    "temperature": st.floats(-1, 5) | JSONS,
    "top_p": st.floats(-1, 2) | JSONS,
    "stream": st.booleans() | JSONS,
    "seed": st.integers(-(2**70), 2**70) | JSONS,
    "n": st.integers(0, 3),
}
BODIES = (
    st.fixed_dictionaries({}, optional=FIELDS).map(json.dumps).map(str.encode)
    | JSONS.map(json.dumps).map(str.encode)
    | st.binary(max_size=200)
    | st.integers(1, 3000).map(lambda n: b'{"messages": ' + b"[" * n)
    | st.integers(10, 2000).map(lambda n: ("[" * n + "]" * n).encode())
)


@pytest.mark.slow
def test_bad_bodies_get_no_5xx_and_leave_the_server_healthy(server):
    seen: list[int] = []
    with httpx.Client(base_url=server, timeout=30, headers=auth()) as client:

        @settings(max_examples=520, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(body=BODIES)
        def post(body: bytes) -> None:
            r = client.post("/v1/chat/completions", content=body,
                            headers={"Content-Type": "application/json"})  # fmt: skip
            assert r.status_code < 500, (body[:300], r.text[:300])
            if r.status_code != 200:
                assert "message" in r.json()["error"]
            seen.append(r.status_code)

        post()
        assert client.get("/health").json()["status"] == "ok"
    assert len(seen) >= 500
    assert set(seen) - {200} <= {413, 422}
