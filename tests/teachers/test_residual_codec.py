"""The control-variate (residual) codec: its KD gradient is an unbiased estimate of the full
teacher's, with less variance than plain tail draws where the tail is large; its records
round-trip; a cache of it records its prior and is refused by another codec; a temperature
schedule is refused."""

import numpy as np
import pytest
import torch

from distillab.compose.teachers import teacher_cache
from distillab.errors import ConfigError, DataError
from distillab.losses.kd import kd_loss
from distillab.losses.residual import residual_kd_loss
from distillab.losses.topk import topk_kd_loss
from distillab.teachers.cache import TeacherCache
from distillab.teachers.codecs import Compact, Layout, Residual
from distillab.teachers.codecs.residual import fp16_stochastic
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg, started
from tests.conftest import TINY_TEACHER as TEACHER


def flat_teacher(n: int, vocab: int, seed: int = 0):
    """A flat teacher (a large tail mass, as at T=2) whose tails share a shape."""
    g = torch.Generator().manual_seed(seed)
    shape = torch.randn(vocab, generator=g) * 2
    return (shape + torch.randn(n, vocab, generator=g) * 0.7).log_softmax(-1)


def gradients(codec, log_probs, layout, student, builds: int):
    """The cached KD gradient [builds, N, V] of `builds` independent caches (samplings and
    roundings), one batch of `builds` copies of the rows."""
    gen = torch.Generator().manual_seed(3)
    prior = codec.prepare(lambda: [log_probs], layout)
    prior = {k: torch.from_numpy(v) for k, v in prior.items()}
    rows = log_probs.repeat(builds, 1)
    values, ids = codec.sample(rows, layout, gen, prior)
    values, ids = codec.decode(codec.encode(values, ids, layout, gen), layout)
    many = student.detach().repeat(builds, 1).requires_grad_()
    loss = codec.estimator(prior)(many, values, ids, 1.0, None, None, layout.tail_samples, 1.0)
    (g,) = torch.autograd.grad(loss * len(rows) / len(log_probs), many)
    return g.reshape(builds, *student.shape)


@pytest.mark.slow
def test_residual_gradient_is_unbiased_and_less_noisy_than_plain_draws():
    vocab, layout = 60, Layout(4, 8, 60)
    log_probs = flat_teacher(8, vocab)
    student = torch.randn(8, vocab, requires_grad=True)
    (want,) = torch.autograd.grad(kd_loss(student, log_probs, 1.0), student)
    tol = 1e-3 * float(want.abs().max())  # the fp16 rounding of the top log-probability
    res = gradients(Residual(), log_probs, layout, student, 4000)
    err = (res.mean(0) - want).abs()
    se = res.std(0) / np.sqrt(len(res))
    assert (err < 5 * se + tol).all(), float(((err - tol) / se).max())
    plain = gradients(Compact(), log_probs, layout, student, 4000)
    assert ((plain.mean(0) - want).abs() < 5 * plain.std(0) / np.sqrt(4000) + tol).all()
    var_res = (res - want).square().sum((1, 2)).mean()
    var_plain = (plain - want).square().sum((1, 2)).mean()
    assert var_res < 0.5 * var_plain, (float(var_res), float(var_plain))


@pytest.mark.slow
def test_residual_value_estimates_the_kl():
    vocab, layout = 40, Layout(4, 8, 40)
    log_probs = flat_teacher(6, vocab, seed=1)
    student = torch.randn(6, vocab)
    codec, gen = Residual(), torch.Generator().manual_seed(0)
    prior = {k: torch.from_numpy(v) for k, v in codec.prepare(lambda: [log_probs], layout).items()}
    loss = codec.estimator(prior)
    v, i = codec.sample(log_probs.repeat(1500, 1), layout, gen, prior)
    v, i = codec.decode(codec.encode(v, i, layout, gen), layout)
    many = student.repeat(50, 1)  # 30 means of 50 caches each
    vals = [
        float(loss(many, a, b, 1.0, None, None, layout.tail_samples, 1.0))
        for a, b in zip(v.split(300), i.split(300), strict=True)
    ]
    want = float(kd_loss(student, log_probs, 1.0))
    assert abs(np.mean(vals) - want) < 5 * np.std(vals) / np.sqrt(len(vals)) + 2e-3 * want


def test_residual_roundtrip_and_bytes():
    codec, layout = Residual(), Layout(16, 32, 4000)
    assert codec.bytes_per_token(layout) == 96  # 8 raw + 15 x 6 + 32 x 1 + 48 x 12 bits
    assert codec.bytes_per_token(Layout(8, 16, 4000)) == 52
    log_probs = flat_teacher(30, 4000)
    prior = {k: torch.from_numpy(v) for k, v in codec.prepare(lambda: [log_probs], layout).items()}
    gen = torch.Generator().manual_seed(0)
    values, ids = codec.sample(log_probs, layout, gen, prior)
    dec_v, dec_i = codec.decode(codec.encode(values, ids, layout, gen), layout)
    assert dec_v.shape == dec_i.shape == (30, codec.columns(layout))
    assert torch.equal(dec_i[:, :48], ids[:, :48])
    assert torch.equal(dec_v[:, 0], values[:, 0].half().float())
    # the draws' weights: +-|d|_1 / S with the sign drawn; lambda from its 16 levels
    w = dec_v[:, 16:48]
    assert torch.equal(torch.sign(w), values[:, 16:48].sign())
    assert torch.allclose(w.abs() * 32, values[:, 49:50], rtol=2e-3)
    assert torch.allclose(dec_v[:, 48], torch.linspace(0, 1.5, 16)[values[:, 48].long()])


def test_fp16_stochastic_rounding_is_unbiased():
    x = torch.full((200_000,), 0.123456789)
    got = fp16_stochastic(x, torch.Generator().manual_seed(0)).float()
    assert len(got.unique()) == 2
    assert abs(float(got.mean()) - 0.123456789) < 2e-7


def test_residual_refuses_another_temperature():
    layout = Layout(2, 4, 20)
    lp = flat_teacher(3, 20)
    codec = Residual()
    prior = {k: torch.from_numpy(v) for k, v in codec.prepare(lambda: [lp], layout).items()}
    v, i = codec.sample(lp, layout, torch.Generator().manual_seed(0), prior)
    with pytest.raises(ValueError, match="no estimator at T=2"):
        codec.estimator(prior)(torch.randn(3, 20), v, i, 2.0, None, None, 4, 1.0)
    # the compact codec's estimator is the plain one
    assert Compact().estimator({}) is topk_kd_loss
    assert Compact().dense_vectors({}) is None
    torch.testing.assert_close(codec.dense_vectors(prior), prior["prior"].float()[None])


@pytest.mark.slow
def test_tiny_residual_cache_records_its_prior_and_is_refused_by_another_codec(tmp_path):
    overrides = ["experiment=distill", *TINY, *TEACHER, "distill.teacher_outputs=cached"]
    cfg = compose_cfg([*overrides, "distill/codec=residual"], tmp_path)
    r = started(cfg)
    cache = teacher_cache(cfg, r.data, r.teacher)
    assert cache.info["codec"] == Residual().key()
    prior = np.load(cache.path / "global_prior.npy")
    assert prior.shape == (len(r.data.tokenizer),) and abs(prior.sum() - 1) < 1e-3
    batch = next(iter(r.data.train_dataloader()))
    values, ids = cache.batch(batch.index, batch.tgt_mask.shape[1], batch.tgt_mask)
    assert values.shape[-1] == cache.codec.columns(cache.layout)
    with pytest.raises(DataError, match="not this job's .*Compact"):
        TeacherCache(cache.path, Compact())
    cfg = compose_cfg(
        [*overrides, "distill/codec=residual", "distill.objective.temperature_end=2"], tmp_path
    )
    with pytest.raises(ConfigError, match="temperature_end=2.*Residual codec"):
        teacher_cache(cfg, started(cfg).data, r.teacher)


@pytest.mark.slow
def test_tiny_distillation_trains_through_the_residual_codec(tmp_path):
    """End to end at T=2: the cached teacher's output carries the codec's estimator, whose
    value equals the loss function's on the batch, and a short run trains to a finite ppl."""
    overrides = [
        "experiment=distill",
        *TINY,
        *TEACHER,
        "distill.teacher_outputs=cached",
        "distill/codec=residual",
        "distill.objective.temperature=2",
        "trainer.max_steps=10",
    ]
    cfg = compose_cfg(overrides, tmp_path)
    r = started(cfg)
    (teacher, *_) = r.distill_teachers
    batch = next(iter(r.distill_data.train_dataloader()))
    out = teacher.outputs(batch)
    logits = torch.randn(*batch.tgt_mask.shape, len(r.data.tokenizer))
    got = out.kd_loss(logits, 2.0, batch.tgt_mask)
    want = residual_kd_loss(
        logits,
        out.values,
        out.ids,
        2.0,
        batch.tgt_mask,
        None,
        out.tail_samples,
        2.0,
        prior=teacher.cache.prior["prior"],
    )
    assert torch.isfinite(got) and torch.allclose(got, want)
    assert np.isfinite(run_job(cfg)["val/ppl"])
