"""The chat page in a real headless browser (Debian's chromium driven by Playwright): type a
key and a line, send, see the model's reply streamed in; a wrong key shows the 401."""

from __future__ import annotations

import json
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_page_sends_the_dialogue_and_shows_the_reply(server, engine):
    if CHROMIUM is None:  # skipped locally; CI installs it, so there a skip is a failure
        why = "needs Debian's chromium (apt-get install chromium)"
        pytest.fail(f"CI=true but {why}") if os.environ.get("CI") == "true" else pytest.skip(why)
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.serve.conftest import KEYS, chat

    expected = chat(server, [{"role": "user", "content": "hello how are you"}]).json()
    expected = expected["choices"][0]["message"]["content"]
    events = chat(server, [{"role": "user", "content": "hello how are you"}], stream=True).text
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in events.split("\n\n")
              if e.startswith("data: {")]  # fmt: skip
    pieces = sum(1 for d in deltas if d.get("content"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sent = []
        page.on("request", lambda r: sent.append(r.post_data) if r.method == "POST" else None)
        page.goto(server + "/")
        page.fill("#key", "sk-wrong")
        page.fill("#text", "hello how are you")
        page.click("#send")
        page.wait_for_selector(".turn.error")
        assert "401" in page.inner_text(".turn.error")
        page.fill("#key", KEYS[0])
        page.dispatch_event("#key", "change")
        page.fill("#text", "hello how are you")
        page.press("#text", "Enter")
        page.wait_for_selector(".turn.assistant.done")  # the stream has ended
        assert page.inner_text(".turn.assistant") == f"bot: {expected}".strip()
        assert json.loads(sent[-1])["stream"] is True  # shown as it was decoded
        assert int(page.get_attribute(".turn.assistant", "data-chunks")) == pieces > 1
        assert page.locator(".turn.user").count() == 2
        browser.close()
