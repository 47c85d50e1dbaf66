"""Teacher-output cache: equal to the teacher, equal in quality, computed once per sweep."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from distillab.compose.teachers import teacher_cache
from distillab.data.batch import Batch
from distillab.data.batching import collate
from distillab.errors import ConfigError, DataError
from distillab.losses import topk_kd_loss
from distillab.teachers import CachedTeacher
from distillab.teachers.cache import FORMAT, TeacherCache
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg, started, student_of
from tests.conftest import TINY_TEACHER as TEACHER

# the exact codec (fp16 + int32): these tests compare the cache with the teacher to fp16
# precision; the compact default codec is tested in test_codecs.py
CACHED = [
    "distill.teacher_outputs=cached",
    "distill.topk=16",
    "distill.tail_samples=8",
    "distill/codec=exact",
]


@pytest.mark.slow
def test_cache_holds_the_teachers_topk_and_tail_draws(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    r = started(cfg)
    dm, teacher = r.data, r.teacher
    served = CachedTeacher(teacher, teacher_cache(cfg, dm, teacher))
    cache = served.cache
    assert cache.tail_samples == 8 and cache.arrays["values"].shape[1] == 16 + 8
    batch = next(iter(dm.train_dataloader()))
    out = served.outputs(batch)
    values, ids = out.values, out.ids
    assert out.tail_samples == 8 and out.softening_temperature == 1.0
    (logits,) = teacher.outputs(batch).logits
    log_probs = logits.log_softmax(-1)
    top_v, top_i = log_probs.topk(16, dim=-1)
    m = batch.tgt_mask
    assert torch.equal(ids[..., :16][m], top_i[m])
    torch.testing.assert_close(values[..., :16][m].float(), top_v[m], atol=1e-2, rtol=1e-3)
    # the draws are tokens outside the top-k, stored with the teacher's log-probability
    drawn = ids[..., 16:][m]
    assert not (drawn.unsqueeze(-1) == top_i[m].unsqueeze(-2)).any()
    assert (drawn[:, 1:] >= drawn[:, :-1]).all()  # sorted, so repeats are adjacent
    torch.testing.assert_close(
        values[..., 16:][m].float(), log_probs[m].gather(-1, drawn), atol=1e-2, rtol=1e-3
    )
    assert (values[~m] == 0).all()
    # the student's named terms on that batch: plain CE and top-k KD against the cache
    module = student_of(r, [served])
    with torch.no_grad():
        student = module(batch)
        ctx = module.loss_context(student, batch, 0.0)
        total, terms, weights = module.objective(ctx, 0.0)
        kd = topk_kd_loss(student.logits, values, ids, 1.0, m, tail_samples=8)
        ce = torch.nn.functional.cross_entropy(
            student.logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=dm.pad_id
        )
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["kd"], kd)
    alpha = cfg.distill.objective.alpha
    torch.testing.assert_close(total, (1 - alpha) * ce + alpha * kd)
    # a second build finds it on disk; another number of draws is another cache
    again = teacher_cache(cfg, dm, teacher)
    assert again.path == cache.path
    cfg.distill.tail_samples = 0
    plain = teacher_cache(cfg, dm, teacher)
    assert plain.path != cache.path and plain.arrays["values"].shape[1] == 16
    assert np.array_equal(plain.arrays["ids"][:], cache.arrays["ids"][:, :16])
    # another temperature is another cache, softened at that temperature (same top tokens)
    cfg.distill.objective.temperature = 2.0
    soft = CachedTeacher(teacher, teacher_cache(cfg, dm, teacher))
    assert soft.cache.path != plain.path and soft.cache.softening_temperature == 2.0
    # softening keeps the order: the same top tokens, up to near-ties at the k-th place (a
    # barely trained teacher's log-probs tie within float rounding: then either is a top-k)
    soft_ids, plain_ids = soft.cache.arrays["ids"][:], plain.arrays["ids"][:]
    differ = np.nonzero((np.sort(soft_ids, 1) != np.sort(plain_ids, 1)).any(1))[0]
    assert len(differ) <= 0.01 * len(plain_ids)
    lp1 = {}
    for b in dm.plain_loader("train"):
        (logits,) = teacher.outputs(b).logits
        lp1.update(zip(b.index.tolist(), logits.float().log_softmax(-1), strict=True))
    rows = np.searchsorted(plain.offsets, differ, side="right") - 1
    for token, row in zip(differ, rows, strict=True):
        lp = lp1[int(row)][token - plain.offsets[row]]
        kth = lp.topk(16).values[-1]
        assert (lp[torch.as_tensor(soft_ids[token]).long()] >= kth - 1e-5).all()
    batch = next(iter(dm.train_dataloader()))
    out = soft.outputs(batch)
    assert out.softening_temperature == 2.0
    (logits,) = teacher.outputs(batch).logits
    soft_v, soft_i = (logits / 2).log_softmax(-1).topk(16, dim=-1)
    m = batch.tgt_mask
    assert torch.equal(out.ids[..., :16][m], soft_i[m])
    torch.testing.assert_close(out.values[..., :16][m].float(), soft_v[m], atol=1e-2, rtol=1e-3)


def _batch(dm, rows: list[int]) -> Batch:
    ds = dm.datasets["train"]
    return collate([ds[i] for i in rows], dm.pad_id, dm.bos_id, dm.eos_id)


@pytest.mark.slow
def test_cache_is_keyed_by_max_target_len_and_refuses_other_lengths(tmp_path):
    """Built for max_target_len=12, a cache is not reused at 20 (another key), and read
    directly with batches cut at 20 it refuses instead of serving all-zero KD targets."""
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    assert cfg.data.max_target_len == 12
    r = started(cfg)
    dm, teacher = r.data, r.teacher
    ckpt = teacher.ckpt
    short = teacher_cache(cfg, dm, teacher)
    assert short.info["max_target_len"] == 12 and short.info["data"] == dm.fingerprint
    assert short.info["rows"] == len(short.offsets) - 1 == len(dm.splits["train"].examples)
    assert short.info["tokens"] == int(short.offsets[-1]) == short.arrays["values"].shape[0]
    # a batch of the data it was built for: zeros past each row's end
    batch = _batch(dm, [0, 1, 2])
    mask = batch.tgt_mask
    values, ids = short.batch(batch.index, mask.shape[1], mask)
    assert values.dtype == torch.float16 and ids.dtype == torch.int64
    assert values.shape == ids.shape == (3, mask.shape[1], 16 + 8)
    assert (values[~mask] == 0).all() and (ids[~mask] == 0).all() and (values[mask] != 0).any()

    cfg20 = compose_cfg(
        ["experiment=distill", *TINY, *TEACHER, *CACHED, "data.max_target_len=20"], tmp_path
    )
    cfg20.teacher.ckpt = ckpt  # an explicit teacher: the same checkpoint bytes
    dm20 = started(cfg20).data
    assert dm20.fingerprint != dm.fingerprint
    long = teacher_cache(cfg20, dm20, teacher)
    assert long.path != short.path and long.info["max_target_len"] == 20
    # the stale one, read anyway: refused, naming the cache, what it recorded, what the batch has
    ds = dm20.datasets["train"]
    rows = [i for i in range(len(ds)) if len(ds[i]["tgt"]) >= 12][:4]
    assert rows, "no target longer than 11 tokens in the tiny corpus"
    batch = _batch(dm20, rows)
    with pytest.raises(DataError) as err:
        short.batch(batch.index, batch.tgt_mask.shape[1], batch.tgt_mask)
    msg = str(err.value)
    assert str(short.path) in msg and "max_target_len=12" in msg
    assert "cached target tokens but the batch's target has" in msg
    with pytest.raises(DataError, match="data.max_target_len=20"):
        short.check_data(dm20)
    assert long.batch(batch.index, batch.tgt_mask.shape[1], batch.tgt_mask)[0].shape[1]


def test_edited_offsets_are_refused(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    r = started(cfg)
    dm, teacher = r.data, r.teacher
    cache = teacher_cache(cfg, dm, teacher)
    offsets = cache.offsets.copy()
    row = int(dm.datasets["train"].rows[0])
    offsets[row + 1] -= 1  # this row one token short, the next one long: same total
    cache.offsets = offsets  # in memory: a batch whose row length disagrees is refused
    batch = _batch(dm, [0])
    with pytest.raises(DataError, match=f"row {row} has"):
        cache.batch(batch.index, batch.tgt_mask.shape[1], batch.tgt_mask)
    # on disk (the same edit of the row lengths): refused on opening
    rows, lengths = np.load(cache.path / "rows.npy"), np.load(cache.path / "lengths.npy")
    i = int(np.flatnonzero(rows == row)[0])
    lengths[i] -= 1
    lengths[i + 1] += 1
    np.save(cache.path / "lengths.npy", lengths)
    with pytest.raises(DataError, match="lengths.npy are not the row lengths it was built with"):
        TeacherCache(cache.path)


def test_the_cache_records_its_softening_temperature_and_refuses_another_format(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    cfg.distill.objective.temperature = 2.0
    r = started(cfg)
    cache = teacher_cache(cfg, r.data, r.teacher)
    assert cache.softening_temperature == 2.0
    info = json.loads((cache.path / "info.json").read_text())
    spec = json.loads((cache.path / "artefact.json").read_text())["spec"]
    assert info["format"] == spec["format"] == FORMAT
    assert info["softening_temperature"] == spec["softening_temperature"] == 2.0
    assert "temperature" not in info and "temperature" not in spec
    # an entry of the previous format (its temperature under another key) is refused, not read
    old = {k: v for k, v in info.items() if k not in ("format", "softening_temperature")}
    (cache.path / "info.json").write_text(json.dumps({**old, "temperature": 2.0}))
    with pytest.raises(DataError, match=f"format '\\?', not '{FORMAT}'"):
        TeacherCache(cache.path)


@pytest.mark.slow
def test_topk_larger_than_vocabulary_is_a_config_error(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    r = started(cfg)
    dm, teacher = r.data, r.teacher
    cfg.distill.topk = len(dm.tokenizer) + 1
    with pytest.raises(ConfigError, match=f"distill.topk={len(dm.tokenizer) + 1} exceeds"):
        teacher_cache(cfg, dm, teacher)


@pytest.mark.slow
def test_cached_with_full_k_matches_online_quality(tmp_path):
    """Same budget, seed and batches: with k = vocabulary the cache holds the whole teacher
    (fp16), so validation perplexity must match online KD within 2%. This checks the cache's
    contents, alignment and loss end to end; what truncation to k < vocabulary costs is a
    quality question measured by benchmarks/cache_quality.py at quickstart size."""
    ppl = {}
    for mode in ("online", "cached"):
        cfg = compose_cfg(
            [
                "experiment=distill",
                *TINY,
                *TEACHER,
                f"distill.teacher_outputs={mode}",
                "trainer.max_steps=30",
            ],
            tmp_path / mode,
        )
        cfg.paths.output_root = str(tmp_path / "shared")
        cfg.paths.cache_dir = str(tmp_path / "shared" / "cache")
        dm = started(cfg).data
        cfg.distill.topk = len(dm.tokenizer)
        ppl[mode] = run_job(cfg)["val/ppl"]
    assert abs(ppl["cached"] - ppl["online"]) / ppl["online"] < 0.02, ppl


@pytest.mark.slow
def test_sweep_of_four_jobs_runs_the_teacher_pass_once(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "distillab.train",
        "-m",
        "experiment=distill",
        *TINY,
        *TEACHER,
        *CACHED,
        "distill.objective.alpha=0.2,0.4,0.6,0.8",
        f"paths.output_root={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert out.count("teacher outputs: one teacher pass") == 1
    assert out.count("training it now") == 1  # the teacher itself is trained once too
    assert len(list((tmp_path / "cache" / "teacher_outputs").glob("*/info.json"))) == 1
    assert len(list(tmp_path.glob("multiruns/*/*/*/metrics.json"))) == 4
