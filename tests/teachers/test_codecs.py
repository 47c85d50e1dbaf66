"""Teacher-output cache codecs: what they store comes back (ids exact, log-probabilities within
the quantisation step, tail repeats exact), the compact one unbiased in probability and under
100 bytes per target token; a cache written by another codec or format is refused."""

import json

import numpy as np
import pytest
import torch

from distillab.compose.teachers import teacher_cache
from distillab.errors import ConfigError, DataError
from distillab.teachers.cache import FORMAT, TeacherCache
from distillab.teachers.codecs import Compact, Exact, Layout
from distillab.teachers.codecs.bits import Record
from distillab.teachers.codecs.compact import step_of
from distillab.teachers.codecs.draws import add_tail_draws
from distillab.validate import validate
from tests.conftest import TINY, compose_cfg, started
from tests.conftest import TINY_TEACHER as TEACHER


def teacher_outputs(n: int, vocab: int, k: int, s: int, seed: int = 0):
    """Sparse outputs of a peaked random teacher: top-k descending, then s sorted tail draws."""
    g = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(n, vocab, generator=g) * 3).log_softmax(-1)
    top_v, top_i = log_probs.topk(k, -1)
    if not s:
        return top_v, top_i
    return add_tail_draws(log_probs, top_v, top_i, s, g)


def roundtrip(codec, values, ids, layout, seed=1):
    enc = codec.encode(values, ids, layout, torch.Generator().manual_seed(seed))
    return enc, codec.decode(enc, layout)


def test_record_packs_and_unpacks_any_widths():
    rng = np.random.default_rng(0)
    groups = [("a", 3, 1), ("b", 17, 5), ("c", 9, 13), ("d", 0, 4), ("e", 8, 24)]
    rec = Record([("raw", 3)], groups)
    assert rec.nbytes == 3 + 1 + 5 * 3 + 13 * 2 + 24
    n = 50
    values = {name: rng.integers(0, 1 << w, (n, c)) for name, c, w in groups}
    raw = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    packed = rec.pack({"raw": raw}, values)
    assert packed.shape == (n, rec.nbytes) and packed.dtype == np.uint8
    got_raw, got = rec.unpack(packed)
    assert np.array_equal(got_raw["raw"], raw)
    for name, c, _ in groups:
        if c:
            assert np.array_equal(got[name].numpy(), values[name]), name
    with pytest.raises(ValueError, match="exceeds 5 bits"):
        rec.pack({"raw": raw}, {**values, "b": values["b"] + 32})


@pytest.mark.parametrize("vocab, k, s", [(4000, 24, 16), (300, 16, 8), (40000, 5, 0), (50, 1, 3)])
def test_compact_roundtrip_is_exact_in_ids_and_within_a_step_in_log_probs(vocab, k, s):
    codec, layout = Compact(), Layout(k, s, vocab)
    values, ids = teacher_outputs(200, vocab, k, s)
    enc, (dec_v, dec_i) = roundtrip(codec, values, ids, layout)
    assert enc["records"].shape == (200, codec.bytes_per_token(layout))
    assert torch.equal(dec_i, ids)  # top ids and every draw, repeats included: counts exact
    assert dec_v.shape == values.shape and dec_v.dtype == torch.float32
    # the top log-probability: fp16 rounding; the others within one step of their grid
    torch.testing.assert_close(dec_v[:, 0], values[:, 0].half().float(), rtol=0, atol=0)
    codes = torch.from_numpy(enc["records"][:, 2:4].astype(np.int64))
    step = step_of(codes)
    err_top = (dec_v[:, 1:k] - values[:, 1:k]).abs()
    assert (err_top <= step[:, :1] * 1.0001 + 1e-3).all()
    assert (dec_v[:, 1:k] <= dec_v[:, :1] + 1e-6).all()
    if s:  # tail draws: below the top grid's floor, within a step of their own grid
        floor = dec_v[:, :1] - 63 * step[:, :1]
        err_tail = (dec_v[:, k:] - values[:, k:].clamp(max=floor)).abs()
        assert (err_tail <= step[:, 1:] * 1.0001 + 1e-3).all()


def test_compact_rounding_is_unbiased_in_probability():
    """The mean decoded probability over re-encodings converges to the teacher's: the tail
    mass the loss derives (1 - sum of top probabilities) is unbiased with it."""
    codec, layout = Compact(value_bits=3), Layout(16, 4, 500)  # coarse: visible rounding
    values, ids = teacher_outputs(200, 500, 16, 4)
    p = values[:, :16].exp()
    reps = 200
    n = len(values)  # one encoding of `reps` copies: independent roundings of each token
    dec_v = roundtrip(codec, values.repeat(reps, 1), ids.repeat(reps, 1), layout)[1][0]
    decoded = dec_v[:, :16].exp().view(reps, n, 16)
    single_err = (decoded[0] - p).abs().mean()
    bias = (decoded.mean(0) - p).abs().mean()
    assert single_err > 1e-3  # 3 bits round visibly ...
    assert bias < 0.1 * single_err  # ... and averages out (nearest rounding would not)
    # the tail mass per token: its mean over re-encodings within 5 standard errors of the truth
    mass = decoded.sum(-1)  # [reps, tokens]
    se = mass.std(0) / reps**0.5
    assert ((mass.mean(0) - p.sum(-1)).abs() <= 5 * se + 1e-6).all()


def test_exact_codec_roundtrip():
    codec, layout = Exact(), Layout(8, 4, 300)
    values, ids = teacher_outputs(100, 300, 8, 4)
    enc, (dec_v, dec_i) = roundtrip(codec, values, ids, layout)
    assert codec.bytes_per_token(layout) == 12 * 6
    assert torch.equal(dec_i, ids) and torch.equal(dec_v, values.half())


def test_codec_ranges_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"distill.codec.value_bits=0 must be in \[1, 16\]"):
        Compact(value_bits=0)
    cfg = compose_cfg(["experiment=distill", "distill.codec.tail_value_bits=17"], tmp_path)
    with pytest.raises(ConfigError, match="distill.codec.tail_value_bits=17"):
        validate(cfg)


@pytest.mark.slow
def test_tiny_cached_distillation_writes_under_100_bytes_per_token(tmp_path):
    """The tests' tiny cached distillation (default codec, top-k and draws): <= 100 bytes
    per target token on disk, everything in the cache's directory counted; an entry written by
    another codec, or of cache format v3, is refused with a message naming it."""
    overrides = ["experiment=distill", *TINY, *TEACHER, "distill.teacher_outputs=cached"]
    cfg = compose_cfg(overrides, tmp_path)
    r = started(cfg)
    cache = teacher_cache(cfg, r.data, r.teacher)
    assert (
        cache.info["codec"]
        == Compact().key()
        == json.loads((cache.path / "artefact.json").read_text())["spec"]["codec"]
    )
    per_token = cache.bytes_per_token
    print(f"{cache.tokens} target tokens, {cache.size_bytes} bytes: {per_token:.1f} B/token")
    assert cache.size_bytes == sum(f.stat().st_size for f in cache.path.iterdir())
    assert per_token <= 100
    # read back through the teacher: equal to a fresh decode, ids in the vocabulary
    batch = next(iter(r.data.train_dataloader()))
    values, ids = cache.batch(batch.index, batch.tgt_mask.shape[1], batch.tgt_mask)
    m = batch.tgt_mask
    assert values.shape == (*m.shape, cache.layout.columns)
    assert (ids[m] < len(r.data.tokenizer)).all() and (values[m] <= 0).all()
    # another codec is another entry; opening this one with it is refused
    other = Compact(value_bits=4)
    with pytest.raises(
        DataError, match=r"written by codec .*Compact\(tail_value_bits=4, value_bits=6\), not"
    ):
        TeacherCache(cache.path, other)
    with pytest.raises(DataError, match="not this job's .*Exact()"):
        TeacherCache(cache.path, Exact())
    # a cache of format v3 (fp16 + int32, no codec recorded) is refused, naming its format
    info = json.loads((cache.path / "info.json").read_text())
    del info["codec"]
    (cache.path / "info.json").write_text(json.dumps({**info, "format": "teacher-outputs-v3"}))
    with pytest.raises(DataError, match=f"format 'teacher-outputs-v3', not '{FORMAT}'"):
        TeacherCache(cache.path)
