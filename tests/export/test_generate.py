"""Batched decoding with per-row settings, for GRU and transformer exports: greedy rows get the runtime's greedy tokens whatever
else is in the batch; sampling is seeded, honours top-p and never draws padding or BOS."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillab.export.families import export_any
from distillab.export.generate import Row, Sampling, decode_steps, draw, generate, nucleus
from distillab.export.runtime_kv import open_export
from distillab.models import Seq2Seq
from tests.export.test_export import SETTINGS, FakeTokenizer
from tests.export.test_export_transformer import FAMILIES

MODELS = {"gru": lambda: Seq2Seq(300, 0, emb_dim=16, hidden_size=32), **FAMILIES}


@pytest.fixture(scope="module", params=list(MODELS))
def rt(request, tmp_path_factory):
    """The runtime of a GRU's export, and of each transformer family's (key/value cache)."""
    torch.manual_seed(0)
    model = MODELS[request.param]().eval()
    out = export_any(model, tmp_path_factory.mktemp("g"), FakeTokenizer(), SETTINGS)
    return open_export(out)


SOURCES = [[5, 7, 8, 9], [5, 10], [4, 11, 12, 13, 14, 15, 5, 16], [5, 17, 18]]


def test_greedy_rows_in_a_mixed_batch_decode_as_alone(rt):
    rows = [
        Row(s, 10, Sampling(1.0, 0.9, seed=i) if i % 2 else None) for i, s in enumerate(SOURCES)
    ]
    got = generate(rt, rows)
    for i in (0, 2):
        alone = rt.greedy(np.array([SOURCES[i]]), np.ones((1, len(SOURCES[i])), bool), 10)[0]
        alone = alone.tolist()
        alone = alone[: alone.index(rt.eos_id)] if rt.eos_id in alone else alone
        assert got[i] == [t for t in alone if t != rt.pad_id]


def test_an_all_greedy_batch_decodes_each_row_as_alone(rt):
    """No sampled row: the graph's own choice (`pick`), each row with its own length."""
    limits = [10, 4, 10, 7]
    got = generate(rt, [Row(s, n) for s, n in zip(SOURCES, limits, strict=True)])
    for s, n, ids in zip(SOURCES, limits, got, strict=True):
        alone = rt.greedy(np.array([s]), np.ones((1, len(s)), bool), n)[0].tolist()
        alone = alone[: alone.index(rt.eos_id)] if rt.eos_id in alone else alone
        assert ids == [t for t in alone if t != rt.pad_id]
        assert len(ids) <= n


def test_sampling_is_seeded_and_lengths_are_per_row(rt):
    rows = lambda seed: [Row(s, 3 + i, Sampling(2.0, 1.0, seed)) for i, s in enumerate(SOURCES)]  # noqa: E731
    a, b, c = generate(rt, rows(1)), generate(rt, rows(1)), generate(rt, rows(2))
    assert a == b and a != c
    steps = list(decode_steps(rt, rows(1)))
    assert len(steps) <= 3 + len(SOURCES) - 1
    assert all(len(r) <= 3 + i for i, r in enumerate(a))
    banned = {rt.pad_id, rt.bos_id}
    assert not banned & {t for r in a for t in r}


def test_nucleus_and_draw():
    probs = np.array([0.1, 0.5, 0.3, 0.1])
    assert nucleus(probs, 0.7).tolist() == [0.0, 0.5, 0.3, 0.0]
    assert nucleus(probs, 0.01).tolist() == [0.0, 0.5, 0.0, 0.0]  # the top token stays
    logits = np.log(probs).astype(np.float32)
    banned = np.zeros(4, np.float32)
    banned[1] = -np.inf
    rng = np.random.default_rng(0)
    draws = {draw(logits, banned, Sampling(1.0, 1.0), rng) for _ in range(200)}
    assert draws == {0, 2, 3}
    assert {draw(logits, np.zeros(4, np.float32), Sampling(1.0, 0.4), rng) for _ in range(50)} == {
        1
    }
    with pytest.raises(ValueError):
        Sampling(0.0)
