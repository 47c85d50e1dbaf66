"""A conversation: cleans what the user types, keeps the last turns and builds each source the
way training did (`data.encoded.DialogueDataset.source`): `<other>` before the user's turns,
`<self>` before the model's (markers are relative to the speaker of the response), the last
`context_turns` turns, cut to the last `max_source_len` tokens."""

from __future__ import annotations

from distillab.chat.context import assemble, clean, user_turn
from distillab.chat.replier import Replier
from distillab.data.tokenizer import OTHER, SELF

__all__ = ["Session", "clean"]


class Session:
    def __init__(self, replier: Replier) -> None:
        self.replier = replier
        self.settings = replier.settings
        self.turns: list[list[int]] = []  # token ids, oldest first; the user's turns at even
        self.self_id, self.other_id = replier.tokenizer.convert_tokens_to_ids([SELF, OTHER])

    def source(self) -> list[int]:
        """The source for the next response (the model speaks after the last turn)."""
        n = len(self.turns)
        marked = [
            (self.self_id if (n - j) % 2 == 0 else self.other_id, ids)
            for j, ids in enumerate(self.turns)
        ]
        return assemble(marked, self.settings.context_turns, self.settings.max_source_len)

    def respond(self, text: str) -> tuple[str, str | None]:
        """The model's answer to the user's `text` (already cleaned), and a notice when the
        input was longer than the model's source limit (kept: its last tokens, as training)."""
        ids = self.replier.tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = self.settings.max_source_len - 1  # room for its speaker marker
        notice = None
        if len(ids) > limit:
            notice = (
                f"(input truncated: {len(ids)} tokens, the model reads the last {limit}; "
                "data.max_source_len of its run)"
            )
        self.turns.append(user_turn(ids, self.settings.max_source_len))
        reply = self.replier.reply(self.source())
        self.turns.append(reply)
        tok = self.replier.tokenizer
        return tok.decode(reply, skip_special_tokens=True).strip(), notice
