"""The request body of `POST /v1/chat/completions` (the OpenAI API's subset that a seq2seq
dialogue model can honour), typed strictly: a wrong type, a missing field or a value out of
range is a 422 naming the field. Unknown fields are ignored, as OpenAI clients send more than
this server uses. The limits that depend on the server's settings (messages, characters,
`max_tokens`) are checked in `check_limits`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distillab.chat.context import clean


class Part(BaseModel):
    """One part of a message's content given as a list (`[{"type": "text", "text": ...}]`);
    any type is parsed, only text is read (`Message.text` refuses the others)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part]

    def text(self, where: str) -> str:
        """The content as one string: a list's text parts joined by spaces (the chat cleaner
        drops line breaks, which would glue two parts' words together); a part of another type (an image, audio, a file) is a
        LimitError naming it, as the model reads text only."""
        if isinstance(self.content, str):
            return self.content
        for j, part in enumerate(self.content):
            if part.type != "text":
                raise LimitError(
                    f"{where}.content[{j}]: a part of type {part.type!r}; this model reads "
                    "text parts only"
                )
            if part.text is None:
                raise LimitError(f"{where}.content[{j}]: a text part without its 'text'")
        return " ".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, lt=2**63)
    n: int | None = Field(None, ge=1, le=1)
    stream: bool = False


class LimitError(ValueError):
    """A request over one of the server's limits (422)."""


def check_limits(
    req: ChatRequest, max_messages: int, max_chars: int, max_tokens: int
) -> list[tuple[str, str]]:
    """The dialogue as `(role, cleaned text)` turns (system messages dropped: the model has no
    instructions), or a LimitError naming what is over which limit."""
    if len(req.messages) > max_messages:
        raise LimitError(f"messages: {len(req.messages)} messages, at most {max_messages}")
    asked = req.max_tokens if req.max_tokens is not None else req.max_completion_tokens
    if asked is not None and asked > max_tokens:
        raise LimitError(f"max_tokens={asked}: at most {max_tokens}")
    turns = []
    for i, m in enumerate(req.messages):
        content = m.text(f"messages[{i}]")
        if len(content) > max_chars:
            raise LimitError(
                f"messages[{i}].content: {len(content)} characters, at most {max_chars}"
            )
        if m.role in ("system", "developer"):
            continue
        text = clean(content)
        if m.role == "user" and not text:
            raise LimitError(f"messages[{i}].content: empty once control characters are removed")
        turns.append((m.role, text))
    if not turns or turns[-1][0] != "user":
        raise LimitError("messages: the last message (system ones aside) must be the user's")
    return turns


def describe(e: ValidationError) -> str:
    """A pydantic error as one line: the first problem's field and message."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
