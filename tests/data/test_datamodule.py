import numpy as np
import pytest
import torch

import distillab.data.prepare as prepare
from distillab.data import DialogueDataModule, chitchat_source, jsonl_source
from distillab.data.batching import BucketBatchSampler
from distillab.data.examples import split_conversations
from distillab.errors import DataError
from tests.conftest import synthetic_conversations, write_jsonl


def test_splits_are_disjoint_by_conversation():
    convs = [c for c in chitchat_source().conversations if len(c.turns) >= 2]
    splits = split_conversations(convs, 0.1, 0.1, seed=3)
    ids = {name: {c.id for c in part} for name, part in splits.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert sum(len(v) for v in ids.values()) == len(convs)
    again = split_conversations(convs, 0.1, 0.1, seed=3)
    assert [c.id for c in again["val"]] == [c.id for c in splits["val"]]
    other = split_conversations(convs, 0.1, 0.1, seed=4)
    assert [c.id for c in other["val"]] != [c.id for c in splits["val"]]


def _dm(tmp_path, path, **kw):
    args = dict(
        vocab_size=200, batch_size=8, eval_batch_size=8, val_fraction=0.1, test_fraction=0.1
    )
    args.update(kw)
    return DialogueDataModule(
        jsonl_source, path=str(path), cache_dir=str(tmp_path / "cache"), **args
    )


def test_cache_is_reused_and_keyed_by_settings(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path)
    dm.load()
    info = tmp_path / "cache" / "data" / dm.corpus_key / "info.json"
    stamp = info.stat().st_mtime_ns
    dm2 = _dm(tmp_path, path)
    dm2.load()
    assert dm2.fingerprint == dm.fingerprint and info.stat().st_mtime_ns == stamp
    dm3 = _dm(tmp_path, path, vocab_size=250)
    dm3.load()
    assert dm3.fingerprint != dm.fingerprint and dm3.corpus_key != dm.corpus_key


def test_a_cached_corpus_is_not_parsed_again_but_changed_bytes_are(tmp_path, monkeypatch):
    """Every job of a sweep finds the encoded corpus cached by the file's sha256: it hashes the
    file and never parses it; a file with other bytes is a new key, read and checked again."""
    import distillab.data.sources as sources

    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    first = _dm(tmp_path, path)
    first.load()
    reads = []
    read = sources._read_jsonl
    monkeypatch.setattr(sources, "_read_jsonl", lambda p: reads.append(p) or read(p))
    again = _dm(tmp_path, path)
    again.load()
    assert reads == [] and again.fingerprint == first.fingerprint
    assert len(again.datasets["train"]) == len(first.datasets["train"])
    write_jsonl(path, synthetic_conversations(31))
    changed = _dm(tmp_path, path)
    changed.load()
    assert reads == [str(path)] and changed.corpus_key != first.corpus_key


@pytest.mark.parametrize(
    "setting",
    [{"max_target_len": 20}, {"max_source_len": 40}, {"context_turns": 2}, {"head_turns": 1}],
)
def test_fingerprint_covers_what_cuts_the_examples(tmp_path, setting):
    """Lengths and context shape what a model sees (and what caches downstream hold): they
    change the fingerprint, while the encoded-corpus cache, which they do not shape, is
    shared when only the cuts differ."""
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path, max_source_len=24, max_target_len=12, context_turns=3)
    dm.load()
    other = _dm(tmp_path, path, **{**dict(max_source_len=24, max_target_len=12), **setting})
    other.load()
    assert other.fingerprint != dm.fingerprint
    assert other.describe()["fingerprint"] == other.fingerprint
    if "context_turns" not in setting:  # context_turns also decides which examples are repeats
        assert other.corpus_key == dm.corpus_key
        assert len(list((tmp_path / "cache" / "data").glob("*/artefact.json"))) == 1
    key = next(iter(setting))
    assert other.describe()[key] == setting[key]


def test_heads_read_the_conversation_opening(tmp_path):
    """With head_turns=N the heads' input is the conversation's first N turns (marked, cut
    to max_source_len from the start), the same for every example of a conversation and
    never augmented; with 0 it is the generation source."""
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path, head_turns=2, max_source_len=12, token_dropout=0.5)
    dm.load()
    ds, split = dm.datasets["train"], dm.splits["train"]
    by_conv: dict[int, list] = {}
    for i in range(len(ds)):
        conv = int(split.examples[ds.rows[i], 0])
        by_conv.setdefault(conv, []).append(ds[i]["head_src"].tolist())
    for conv, heads in by_conv.items():
        want = [dm.other_id, *split.turn(conv, 0), dm.self_id, *split.turn(conv, 1)][:12]
        assert all(h == want for h in heads)
    batch = next(iter(dm.train_dataloader()))
    assert batch.head_src.shape[1] <= 12
    assert torch.equal(batch.head_src_mask, batch.head_src != dm.pad_id)
    assert batch.head_input == (batch.head_src, batch.head_src_mask)
    same = _dm(tmp_path, path, head_turns=0)
    same.load()
    item = same.datasets["val"][0]
    assert np.array_equal(item["head_src"], item["src"])
    shared = next(iter(same.val_dataloader()))
    assert shared.head_src is None and shared.head_src_mask is None  # encoded once by the model
    assert shared.head_input == (shared.src, shared.src_mask)


def test_items_carry_their_whole_conversation(tmp_path):
    """`conv` is every turn of the example's conversation (first `head_bag_len` tokens); a
    batch concatenates them with offsets that give each row back (only when asked: no head
    reads them otherwise); the cap is in the fingerprint (it shapes what the heads read)."""
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path, conversation_bag=True)
    dm.load()
    capped = _dm(tmp_path, path, head_bag_len=5)
    capped.load()
    assert capped.fingerprint != dm.fingerprint
    split = dm.splits["val"]
    for ds, cap in ((dm.datasets["val"], None), (capped.datasets["val"], 5)):
        items = [ds[i] for i in range(len(ds))]
        for item in items:
            conv = int(split.examples[item["index"], 0])
            turns = range(int(split.conv_start[conv + 1] - split.conv_start[conv]))
            whole = [t for j in turns for t in split.turn(conv, j)]
            assert item["conv"].tolist() == whole[:cap]
    batch = next(iter(dm.val_dataloader()))
    tokens, offsets = batch.conversation
    ends = [*offsets[1:].tolist(), len(tokens)]
    for row, (start, end) in enumerate(zip(offsets.tolist(), ends, strict=True)):
        item = dm.datasets["val"][int(batch.index[row])]
        assert tokens[start:end].tolist() == item["conv"].tolist()
    assert next(iter(capped.val_dataloader())).conversation is None  # not asked for


def test_augmentation_is_not_part_of_the_fingerprint(tmp_path):
    """Augmentation only touches training batches; caches refuse it rather than key by it."""
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm, aug = _dm(tmp_path, path), _dm(tmp_path, path, token_dropout=0.2, context_dropout=0.2)
    dm.load(), aug.load()
    assert aug.fingerprint == dm.fingerprint


def _no_tokenizer(*args, **kwargs):
    raise AssertionError("the tokenizer was trained before the data was checked")


def test_filters_that_empty_a_split_are_named_before_tokenising(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "train_tokenizer", _no_tokenizer)
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))  # 3-6 words a turn
    dm = _dm(tmp_path, path, min_target_words=50, max_target_words=64)
    with pytest.raises(DataError) as err:
        dm.load()
    msg = str(err.value)
    assert str(path) in msg
    assert "data.min_target_words=50, data.max_target_words=64 left the train split" in msg
    assert "of 120 target turns in 24 conversations, 120 were outside the word range" in msg
    assert not [p for p in (tmp_path / "cache" / "data").iterdir() if p.is_dir()]


def test_max_examples_that_leave_a_split_empty_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "train_tokenizer", _no_tokenizer)
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))  # 5 targets each
    too_few = _dm(tmp_path, path, max_examples=10)  # 2 conversations: val 1, test 1, train 0
    with pytest.raises(DataError, match=r"too few to split .*data.max_examples=10 took 2 of 30"):
        too_few.load()
    # the filter empties a split of the few conversations max_examples kept: both are named
    narrow = _dm(tmp_path, path, max_examples=40, min_target_words=7)
    with pytest.raises(DataError) as err:
        narrow.load()
    msg = str(err.value)
    assert "data.min_target_words=7, data.max_target_words=64 left the train split" in msg
    assert "of 30 target turns in 6 conversations, 30 were outside the word range" in msg
    assert "data.max_examples=40 kept 8 of 30 usable conversations" in msg


def test_batches_cover_every_example_once_with_masks(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path)
    dm.load()
    seen = []
    for batch in dm.train_dataloader():
        seen += batch.index.tolist()
        assert torch.equal(batch.src_mask, batch.src != dm.pad_id)
        assert (batch.tgt_in[:, 0] == dm.bos_id).all()
        # every target ends in exactly one EOS, and n_tokens counts the unpadded target tokens
        assert ((batch.tgt_out == dm.eos_id).sum(1) == 1).all()
        assert batch.n_tokens == int(batch.tgt_mask.sum()) and batch.size == len(batch.index)
    assert sorted(seen) == list(range(len(dm.datasets["train"])))


def test_bucketing_groups_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=10, shuffle=True, bucket_multiplier=100)
    spread = np.mean([np.ptp(lengths[b]) for b in sampler])
    random_spread = np.mean([np.ptp(lengths[i : i + 10]) for i in range(0, 1000, 10)])
    assert spread < random_spread / 5
    assert [b for b in sampler] != [b for b in sampler]  # a fresh order each epoch


def test_augmentation_touches_training_only(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path, token_dropout=0.5, context_dropout=0.5)
    dm.load()
    train, val = dm.datasets["train"], dm.datasets["val"]
    assert any(not np.array_equal(train[i]["src"], train[i]["src"]) for i in range(len(train)))
    assert all(np.array_equal(val[i]["src"], val[i]["src"]) for i in range(len(val)))


def test_topic_balanced_weights(tmp_path):
    rows = synthetic_conversations(30)
    for r in rows[:20]:
        r["topic"] = "common"
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    dm = _dm(tmp_path, path, balanced_topics=True)
    dm.load()
    ds = dm.datasets["train"]
    topics = ds.split.topic[ds.split.examples[:, 0]]
    w = ds.topic_weights().numpy()
    totals = {t: w[topics == t].sum() for t in set(topics.tolist())}
    assert np.allclose(list(totals.values()), 1.0)  # every topic gets the same total weight
