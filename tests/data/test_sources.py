import pytest

from distillab.data import chitchat_source, jsonl_source
from distillab.errors import DataError
from tests.conftest import synthetic_conversations, write_jsonl


def test_chitchat_corpus_is_the_real_one():
    corpus = chitchat_source()
    assert len(corpus.conversations) == 7168
    rated = [c.rating for c in corpus.conversations if c.rating is not None]
    assert rated and all(0.0 <= r <= 1.0 for r in rated)
    # 34 named prompts; conversations without one (missing or empty) form the "none" class
    assert len({c.topic for c in corpus.conversations if c.topic}) == 34
    assert sum(c.topic is None for c in corpus.conversations) == 243
    # consecutive messages of one sender are one turn: no conversation has an empty turn list
    assert all(len(c.turns) >= 1 for c in corpus.conversations)


def test_jsonl_reads_valid_file(tmp_path):
    rows = synthetic_conversations(5)
    rows[0].pop("rating")
    rows[1].pop("topic")
    corpus = jsonl_source(str(write_jsonl(tmp_path / "ok.jsonl", rows)))
    assert [c.id for c in corpus.conversations] == [r["id"] for r in rows]
    assert corpus.conversations[0].rating is None and corpus.conversations[1].topic is None
    assert len(corpus.sha256) == 64


BAD_LINES = [
    ("{not json", "invalid JSON"),
    ('{"id": "x"}', "missing 'turns'"),
    ('{"turns": "hello"}', "'turns' must be a list"),
    ('{"turns": ["a", 3]}', "turns[1] must be a string"),
    ('{"turns": ["only one"]}', "at least 2 turns"),
    ('{"turns": ["a", "b"], "rating": "high"}', "'rating' must be a finite number"),
    ('{"turns": ["a", "b"], "rating": 7}', "'rating' must be in [0, 1]"),
    ('{"turns": ["a", "b"], "topic": 5}', "'topic' must be a string"),
    ("[1, 2]", "expected a JSON object"),
]


@pytest.mark.parametrize("bad, message", BAD_LINES)
def test_jsonl_error_names_file_and_line(tmp_path, bad, message):
    good = '{"turns": ["hi", "hello"]}'
    path = write_jsonl(tmp_path / "bad.jsonl", [good, good, bad, good])
    with pytest.raises(DataError) as err:
        jsonl_source(str(path))
    assert f"{path}:3:" in str(err.value)
    assert message in str(err.value)


def test_jsonl_undecodable_bytes(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"turns": ["a", "b"]}\n{"turns": ["\xff\xfe", "b"]}\n')
    with pytest.raises(DataError, match=rf"{path}:2: undecodable bytes"):
        jsonl_source(str(path))


def test_jsonl_empty_or_missing_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no usable conversations"):
        jsonl_source(str(empty))
    with pytest.raises(DataError, match="no such file"):
        jsonl_source(str(tmp_path / "nope.jsonl"))
