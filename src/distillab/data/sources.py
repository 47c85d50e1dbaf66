"""Corpus sources: each turns a file into a list of `Conversation`s, validating as it reads.

A source is instantiated by Hydra as a partial (`_partial_: true`) and called with the data
file path, so `data.path=FILE` means "the corpus file" whichever source is selected. It names
the file's bytes at once (path, sha256; a missing file is an error then) and reads and checks
the conversations when they are first asked for: a job whose encoded corpus is cached (keyed
by the sha256, so built from these very bytes) never parses the file again.
"""

from __future__ import annotations

import codecs
import gzip
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import BinaryIO

from distillab.errors import DataError
from distillab.utils.io import file_sha256

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[str, ...]
    topic: str | None = None  # None = no topic ("none" class)
    rating: float | None = None  # in [0, 1]; None = unrated (masked in the loss)


@dataclass(frozen=True)
class Corpus:
    path: str
    sha256: str  # fingerprint of the file's bytes, saved with every run
    read: Callable[[], list[Conversation]] = field(repr=False, compare=False)

    @cached_property
    def conversations(self) -> list[Conversation]:
        """Read and checked on first use (a `DataError` names the file and what is wrong)."""
        return self.read()


def chitchat_source(path: str | None = None) -> Corpus:
    """The chit-chat corpus shipped in the `chitchat-dataset` package (7,168 conversations).

    A turn is one sender's consecutive messages joined with a space; the topic is the
    conversation's prompt; the rating is the mean of the upbeat and witty ratings (1-10)
    scaled to [0, 1].
    """
    if path is None:
        import chitchat_dataset

        path = str(Path(chitchat_dataset.__file__).with_name("dataset.json"))
    _check_file(path)
    return Corpus(str(path), file_sha256(path), partial(_read_chitchat, path))


def _read_chitchat(path: str) -> list[Conversation]:
    raw = _read_json_file(path, "the chitchat corpus (a JSON object of conversations by id)")
    if not isinstance(raw, dict):
        raise DataError(
            f"{path}: expected the chitchat corpus, a JSON object of conversations by id; "
            f"got a JSON {type(raw).__name__}"
        )
    if not raw:
        raise DataError(f"{path}: no usable conversations (the JSON object is empty)")
    return [
        _chitchat_conversation(cid, raw[cid], f"{path}: conversation {cid!r}")
        for cid in sorted(raw)
    ]


def _check_file(path: str) -> None:
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file (data.path)")


def _read_json_file(path: str, what: str) -> object:
    """One JSON document; a missing, empty, non-UTF-8 or non-JSON file is a DataError that
    names the file and what was expected."""
    p = Path(path)
    _check_file(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from e
    if not data.strip():
        size = "0 bytes" if not data else "only whitespace"
        raise DataError(f"{path}: the file is empty ({size}); expected {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text (undecodable byte at offset {e.start}: {e.reason}); "
            f"expected {what}"
        ) from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}:{e.lineno}: not JSON: {e.msg} (column {e.colno}); expected {what}"
        ) from e


def _chitchat_conversation(cid: str, conv: object, where: str) -> Conversation:
    """A turn is one sender's consecutive message groups joined; checks the structure
    (`{"messages": [[{"text", "sender"}, ...], ...], "ratings": {...}, "prompt": str}`)."""
    if not isinstance(conv, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(conv).__name__}")
    groups = conv.get("messages", [])
    if not isinstance(groups, list):
        raise DataError(f"{where}: 'messages' must be a list, got {type(groups).__name__}")
    turns: list[str] = []
    last_sender = None
    for g, group in enumerate(groups):
        if not isinstance(group, list) or not all(isinstance(m, dict) for m in group):
            raise DataError(f"{where}: messages[{g}] must be a list of message objects")
        texts = [m.get("text") for m in group]
        if not all(t is None or isinstance(t, str) for t in texts):
            raise DataError(f"{where}: messages[{g}]: every 'text' must be a string")
        text = " ".join(t.strip() for t in texts if t).strip()
        sender = group[0].get("sender") if group else None
        if turns and sender == last_sender:
            turns[-1] = f"{turns[-1]} {text}".strip()
        else:
            turns.append(text)
        last_sender = sender
    ratings = conv.get("ratings") or {}
    if not isinstance(ratings, dict):
        raise DataError(f"{where}: 'ratings' must be an object, got {type(ratings).__name__}")
    scores = [
        ratings[k]
        for k in ("upbeat", "witty")
        if isinstance(ratings.get(k), (int, float)) and not isinstance(ratings.get(k), bool)
    ]
    rating = (sum(scores) / len(scores) - 1.0) / 9.0 if scores else None
    prompt = conv.get("prompt") or None
    if prompt is not None and not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be a string, got {type(prompt).__name__}")
    return Conversation(str(cid), tuple(turns), prompt, rating)


def jsonl_source(path: str | None = None) -> Corpus:
    """Users' own data: one JSON object per line.

    `{"id": str (optional), "turns": [str, ...] (>= 2), "topic": str (optional),
    "rating": number in [0, 1] (optional)}`. UTF-8, with or without a byte-order mark; gzip
    compressed (`.jsonl.gz`) or not. The first bad line stops the run with the file, the line
    number and what is wrong.
    """
    if not path:
        raise DataError(
            "data.path is required with data=jsonl (a .jsonl file, one conversation a line)"
        )
    _check_file(path)
    return Corpus(str(path), file_sha256(path), partial(_read_jsonl, str(path)))


def _open_bytes(path: str) -> BinaryIO:
    """The file's bytes, gunzipped when it is gzip data (`.jsonl.gz`: told by its magic bytes,
    not its name)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_jsonl(path: str) -> list[Conversation]:
    convs = []
    lineno = 0
    try:
        with _open_bytes(path) as f:
            for lineno, raw in enumerate(f, start=1):
                where = f"{path}:{lineno}"
                if lineno == 1:
                    raw = raw.removeprefix(codecs.BOM_UTF8)  # as Windows editors write UTF-8
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{where}: undecodable bytes (not UTF-8): {e.reason}") from e
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from e
                convs.append(_conversation_from_json(obj, where, default_id=f"line{lineno}"))
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read the gzip data after line {lineno}: {e}") from e
    if not convs:
        what = "0 bytes" if lineno == 0 else f"its {lineno} lines are all blank"
        raise DataError(
            f"{path}: the file is empty ({what}): no usable conversations; expected one JSON "
            'object a line, {"turns": [str, ...]}'
        )
    return convs


def _conversation_from_json(obj: object, where: str, default_id: str) -> Conversation:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "turns" not in obj:
        raise DataError(f"{where}: missing 'turns' (a list of at least 2 strings)")
    turns = obj["turns"]
    if not isinstance(turns, list):
        raise DataError(f"{where}: 'turns' must be a list of strings, got {type(turns).__name__}")
    for i, t in enumerate(turns):
        if not isinstance(t, str):
            raise DataError(f"{where}: turns[{i}] must be a string, got {type(t).__name__}")
    if len(turns) < 2:
        raise DataError(f"{where}: 'turns' needs at least 2 turns, got {len(turns)}")
    topic = obj.get("topic")
    if topic is not None and not isinstance(topic, str):
        raise DataError(f"{where}: 'topic' must be a string, got {type(topic).__name__}")
    rating = obj.get("rating")
    if rating is not None:
        if (
            isinstance(rating, bool)
            or not isinstance(rating, (int, float))
            or not math.isfinite(rating)
        ):
            raise DataError(f"{where}: 'rating' must be a finite number, got {rating!r}")
        if not 0.0 <= rating <= 1.0:
            raise DataError(f"{where}: 'rating' must be in [0, 1], got {rating}")
        rating = float(rating)
    cid = obj.get("id", default_id)
    if not isinstance(cid, str):
        raise DataError(f"{where}: 'id' must be a string, got {type(cid).__name__}")
    return Conversation(cid, tuple(turns), topic or None, rating)
