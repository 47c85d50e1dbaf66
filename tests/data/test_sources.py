import codecs
import gzip

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
    corpus = jsonl_source(str(path))  # the file's bytes are named at once, read when needed
    with pytest.raises(DataError) as err:
        _ = corpus.conversations
    assert f"{path}:3:" in str(err.value)
    assert message in str(err.value)


def test_jsonl_with_a_byte_order_mark_or_gzipped_reads_the_same(tmp_path):
    rows = synthetic_conversations(5)
    plain = write_jsonl(tmp_path / "plain.jsonl", rows)
    bom = tmp_path / "bom.jsonl"  # as Windows editors save UTF-8
    bom.write_bytes(codecs.BOM_UTF8 + plain.read_bytes())
    gz = tmp_path / "rows.jsonl.gz"
    gz.write_bytes(gzip.compress(bom.read_bytes()))
    want = jsonl_source(str(plain)).conversations
    for path in (bom, gz):
        got = jsonl_source(str(path)).conversations
        assert [(c.id, c.turns, c.topic, c.rating) for c in got] == [
            (c.id, c.turns, c.topic, c.rating) for c in want
        ]
    # a mark anywhere but the file's start is still refused, with its line
    late = tmp_path / "late.jsonl"
    late.write_bytes(plain.read_bytes() + codecs.BOM_UTF8 + b'{"turns": ["a", "b"]}\n')
    with pytest.raises(DataError, match=rf"{late}:6: invalid JSON"):
        _ = jsonl_source(str(late)).conversations


def test_jsonl_gzip_cut_short_is_a_data_error(tmp_path):
    rows = synthetic_conversations(40)
    data = gzip.compress(write_jsonl(tmp_path / "rows.jsonl", rows).read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"{cut}: cannot read the gzip data"):
        _ = jsonl_source(str(cut)).conversations


def test_jsonl_undecodable_bytes(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"turns": ["a", "b"]}\n{"turns": ["\xff\xfe", "b"]}\n')
    with pytest.raises(DataError, match=rf"{path}:2: undecodable bytes"):
        _ = jsonl_source(str(path)).conversations


def test_jsonl_empty_or_missing_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jsonl: the file is empty \(0 bytes\)"):
        _ = jsonl_source(str(empty)).conversations
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n\n")
    with pytest.raises(DataError) as err:
        _ = jsonl_source(str(blank)).conversations
    assert f"{blank}: the file is empty (its 3 lines are all blank)" in str(err.value)
    assert "no usable conversations" in str(err.value)
    with pytest.raises(DataError, match="no such file"):
        jsonl_source(str(tmp_path / "nope.jsonl"))


CHITCHAT_BAD = [
    (b"", "the file is empty (0 bytes)"),
    (b"  \n\t\n", "the file is empty (only whitespace)"),
    (b'{"a": {"messages": [[{"text": "caf\xe9", "sender": "x"}]]}}', "not UTF-8 text"),
    (b'{"a": {"messages": [}', ":1: not JSON: Expecting value (column 21)"),
    (b"turns,text\nhi,there\n", ":1: not JSON"),
    (b"[1, 2]", "a JSON object of conversations by id; got a JSON list"),
    (b"{}", "no usable conversations (the JSON object is empty)"),
    (b'{"a": [1]}', "conversation 'a': expected a JSON object, got list"),
    (b'{"a": {"messages": "hi"}}', "conversation 'a': 'messages' must be a list"),
    (b'{"a": {"messages": [["hi"]]}}', "messages[0] must be a list of message objects"),
    (b'{"a": {"messages": [[{"text": 5}]]}}', "every 'text' must be a string"),
]


@pytest.mark.parametrize("content, message", CHITCHAT_BAD)
def test_chitchat_path_that_is_not_the_corpus(tmp_path, content, message):
    path = tmp_path / "corpus.json"
    path.write_bytes(content)
    corpus = chitchat_source(str(path))
    assert len(corpus.sha256) == 64  # named at once; read and checked on first use
    with pytest.raises(DataError) as err:
        _ = corpus.conversations
    assert str(path) in str(err.value) and message in str(err.value)


def test_chitchat_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        chitchat_source(str(tmp_path / "nope.json"))


def test_bad_data_stops_the_datamodule_before_tokenising(tmp_path, monkeypatch):
    import distillab.data.prepare as prepare
    from distillab.data import DialogueDataModule

    def no_tokenizer(*args, **kwargs):
        raise AssertionError("the tokenizer was trained on bad data")

    monkeypatch.setattr(prepare, "train_tokenizer", no_tokenizer)
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"a": {"messages": [[{"text": "caf\xe9"}]]}}')
    dm = DialogueDataModule(chitchat_source, path=str(path), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        dm.load()
    dm = DialogueDataModule(jsonl_source, path=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="no such file"):
        dm.load()
