import numpy as np
import torch

from distillab.data import DialogueDataModule, chitchat_source, jsonl_source
from distillab.data.batching import BucketBatchSampler
from distillab.data.examples import split_conversations
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
    info = tmp_path / "cache" / "data" / dm.fingerprint / "info.json"
    stamp = info.stat().st_mtime_ns
    dm2 = _dm(tmp_path, path)
    dm2.load()
    assert dm2.fingerprint == dm.fingerprint and info.stat().st_mtime_ns == stamp
    dm3 = _dm(tmp_path, path, vocab_size=250)
    dm3.load()
    assert dm3.fingerprint != dm.fingerprint


def test_batches_cover_every_example_once_with_masks(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(30))
    dm = _dm(tmp_path, path)
    dm.load()
    seen = []
    for batch in dm.train_dataloader():
        seen += batch["index"].tolist()
        assert torch.equal(batch["src_mask"], batch["src"] != dm.pad_id)
        assert (batch["tgt_in"][:, 0] == dm.bos_id).all()
        # every target ends in exactly one EOS, and n_tokens counts the unpadded target tokens
        assert ((batch["tgt_out"] == dm.eos_id).sum(1) == 1).all()
        assert batch["n_tokens"] == int(batch["tgt_mask"].sum())
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
