"""What answers: an export directory decoded by onnxruntime (`export.runtime`, no torch), its
tokenizer, and its model card. Turns a dialogue into a source exactly as `distillab-chat` does
(`chat.context`: cleaned turns, the user's kept to their last `max_source_len - 1` tokens, the
speaker markers, the last `context_turns` turns, cut on the left), and ids back into text as
the chat prints them.

The chat keeps the model's own turns as the ids it decoded; an API client sends them back as
text, and text does not always tokenize back to the same ids (a byte split across tokens, a
leading-space token). So the engine remembers the ids of its recent replies by their text
(`REMEMBERED`, least recently used dropped) and an assistant message holding one of them is
read as those ids: a dialogue continued with this server's replies gets distillab-chat's
context. Other assistant text is tokenized. Tokenizer calls stay on the event loop's thread (a fast tokenizer is not
to be shared across threads); decoding runs in the batcher's thread."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerFast

from distillab.chat.context import assemble, clean, user_turn
from distillab.errors import ConfigError
from distillab.export.card import CARD
from distillab.export.runtime_kv import open_export

REMEMBERED = 4096  # replies whose ids are kept, by their text


class Engine:
    def __init__(self, path: str | Path, precision: str = "fp32", threads: int = 1) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"ckpt={path}: a directory without config.json (not an export)")
        self.path = path
        self.model = open_export(path, precision, threads=threads)
        c = self.model.config
        self.context_turns, self.max_source_len = c["context_turns"], c["max_source_len"]
        self.max_len = int(c["max_len"])
        self.markers = {"user": c["other_id"], "assistant": c["self_id"]}
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path / c["files"]["tokenizer"]))
        self.replies: OrderedDict[str, list[int]] = OrderedDict()
        card = path / CARD
        self.card: dict[str, Any] = json.loads(card.read_text()) if card.is_file() else {}

    def ids(self, text: str) -> list[int]:
        # the `tokenizers` object under the fast tokenizer: the same ids as calling the
        # tokenizer, without transformers' per-call argument handling (most of its cost)
        return self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids

    def source(self, turns: list[tuple[str, str]]) -> list[int]:
        """The model's source for the reply after `turns` (`(role, cleaned text)`, oldest
        first, the last one the user's)."""
        marked = []
        for role, text in turns:
            if role == "user":
                ids = user_turn(self.ids(text), self.max_source_len)
            else:
                ids = self.replies.get(text) or self.ids(text)
            marked.append((self.markers[role], ids))
        return assemble(marked, self.context_turns, self.max_source_len)

    def text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def reply(self, ids: list[int]) -> str:
        """The text of reply `ids`, remembered with them (see the module's docstring)."""
        text = self.text(ids)
        key = clean(text)  # as the reply comes back: a message's text is cleaned
        self.replies[key] = list(ids)
        self.replies.move_to_end(key)
        while len(self.replies) > REMEMBERED:
            self.replies.popitem(last=False)
        return text
