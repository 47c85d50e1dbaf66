"""Teacher-output cache: equal to the teacher, equal in quality, computed once per sweep."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from distillab.errors import ConfigError
from distillab.jobs.common import start_run
from distillab.jobs.distill import build_student, check_teacher_outputs, teacher_cache
from distillab.jobs.teacher import resolve_teachers
from distillab.losses import topk_kd_loss
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg
from tests.modules.test_distill import TEACHER

CACHED = ["distill.teacher_outputs=cached", "distill.topk=16", "distill.tail_samples=8"]


@pytest.mark.slow
def test_cache_holds_the_teachers_topk_and_tail_draws(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    _, dm = start_run(cfg)
    teachers = resolve_teachers(cfg, dm)
    module = build_student(cfg, dm, teachers)
    cache = teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)
    assert cache.tail_samples == 8 and cache.values.shape[1] == 16 + 8
    dm.datasets["train"].teacher_cache = cache
    batch = next(iter(dm.train_dataloader()))
    values, ids = batch["topk_values"], batch["topk_ids"]
    assert batch["topk_tail_samples"] == 8 and batch["topk_temperature"] == 1.0
    with torch.no_grad():
        log_probs = module.teachers[0](batch).logits.log_softmax(-1)
    top_v, top_i = log_probs.topk(16, dim=-1)
    m = batch["tgt_mask"]
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
    # the student's loss terms from the batch: the shared gather gives the plain CE and KD
    alpha = cfg.distill.objective.alpha
    with torch.no_grad():
        out = module(batch)
        terms = module.training_losses(out, batch)
        ce = module.gold_losses(out, batch)["ce"]
        kd = topk_kd_loss(out.logits, values, ids, 1.0, m, tail_samples=8)
    torch.testing.assert_close(terms["ce"], (1 - alpha) * ce)
    torch.testing.assert_close(terms["kd"], alpha * kd)
    # a second build finds it on disk; another number of draws is another cache
    again = teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)
    assert again.path == cache.path
    cfg.distill.tail_samples = 0
    plain = teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)
    assert plain.path != cache.path and plain.values.shape[1] == 16
    assert np.array_equal(plain.ids[:], cache.ids[:, :16])
    # another temperature is another cache, softened at that temperature (same top tokens)
    cfg.distill.objective.temperature = 2.0
    soft = teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)
    assert soft.path != plain.path and soft.temperature == 2.0
    assert np.array_equal(soft.ids[:], plain.ids[:])
    dm.datasets["train"].teacher_cache = soft
    batch = next(iter(dm.train_dataloader()))
    assert batch["topk_temperature"] == 2.0
    with torch.no_grad():
        soft_v, soft_i = (module.teachers[0](batch).logits / 2).log_softmax(-1).topk(16, dim=-1)
    m = batch["tgt_mask"]
    assert torch.equal(batch["topk_ids"][..., :16][m], soft_i[m])
    torch.testing.assert_close(
        batch["topk_values"][..., :16][m].float(), soft_v[m], atol=1e-2, rtol=1e-3
    )


@pytest.mark.slow
def test_topk_larger_than_vocabulary_is_a_config_error(tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER, *CACHED], tmp_path)
    _, dm = start_run(cfg)
    teachers = resolve_teachers(cfg, dm)
    module = build_student(cfg, dm, teachers)
    cfg.distill.topk = len(dm.tokenizer) + 1
    with pytest.raises(ConfigError, match=f"distill.topk={len(dm.tokenizer) + 1} exceeds"):
        teacher_cache(cfg, dm, module.teachers[0], teachers[0]["ckpt"], cfg.paths.cache_dir)


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
        _, dm = start_run(cfg)
        cfg.distill.topk = len(dm.tokenizer)
        ppl[mode] = run_job(cfg)["val/ppl"]
    assert abs(ppl["cached"] - ppl["online"]) / ppl["online"] < 0.02, ppl


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.token_dropout=0.1", "data augmentation"),
        ("distill=seqkd", "distill.seqkd.enabled=true"),
        ("distill=hidden", "hidden/attention transfer"),
        ("distill.topk=0", "distill.topk=0"),
        ("distill.tail_samples=-1", "distill.tail_samples=-1"),
    ],
)
def test_cached_excludes_what_changes_teacher_outputs(tmp_path, override, message):
    cfg = compose_cfg(["experiment=distill", *CACHED, override], tmp_path)
    if override.startswith("distill="):
        cfg.distill.teacher_outputs, cfg.distill.topk = "cached", 16
    with pytest.raises(ConfigError, match=message):
        check_teacher_outputs(cfg)


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
