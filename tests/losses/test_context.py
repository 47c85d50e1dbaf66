"""LossContext: the student's log-probabilities read once per distribution for every term."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch

from distillab.data.batch import Batch
from distillab.losses import topk_kd_loss
from distillab.losses.context import LossContext
from distillab.losses.residual import residual_kd_loss
from distillab.losses.terms import GoldCE, LogitKD
from distillab.teachers.codecs.base import Layout
from distillab.teachers.codecs.residual import Residual
from distillab.teachers.outputs import CachedOutput
from tests.conftest import make_batch


def padded_batch(g: torch.Generator, vocab: int) -> Batch:
    tgt = torch.randint(3, vocab, (4, 5), generator=g)
    tgt[1, 3:] = 0  # padding
    return make_batch(4, tgt_len=5, tgt_out=tgt, tgt_mask=tgt != 0)


def assert_matches_reference(
    logits: torch.Tensor,
    batch: Batch,
    teacher: CachedOutput,
    temperature: float,
    reference_kd: Callable[[torch.Tensor], torch.Tensor],
) -> LossContext:
    """GoldCE + LogitKD through a LossContext equal F.cross_entropy + `reference_kd(logits)`
    in value and gradient; returns a context over `logits` for further checks."""

    def losses(shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = logits.clone().requires_grad_()
        if shared:
            ctx = LossContext(SimpleNamespace(logits=z), batch, 0, teacher, temperature)
            total = GoldCE()(ctx) + LogitKD()(ctx)
        else:
            tgt = batch.tgt_out.flatten()
            total = torch.nn.functional.cross_entropy(z.flatten(0, 1), tgt, ignore_index=0)
            total = total + reference_kd(z)
        total.backward()
        return total.detach(), z.grad

    (got, got_grad), (want, want_grad) = losses(True), losses(False)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
    return LossContext(SimpleNamespace(logits=logits), batch, 0, teacher, temperature)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_gold_ce_and_cached_kd_share_one_gather_without_changing_loss_or_gradient(temperature):
    """The gold CE and the cached KD read the student's log-probs through one gather at T=1
    (LossContext.gold_read and teacher_read; at T=2 the KD reads its own softmax); values and gradients equal
    F.cross_entropy and topk_kd_loss."""
    g = torch.Generator().manual_seed(3)
    batch = padded_batch(g, 20)
    values = torch.log_softmax(torch.randn(4, 5, 6, generator=g), -1)
    ids = torch.randint(0, 20, (4, 5, 6), generator=g)
    teacher = CachedOutput(values=values, ids=ids, tail_samples=2)
    logits = torch.randn(4, 5, 20, generator=g, dtype=torch.float64)
    mask = batch.tgt_mask

    ctx = assert_matches_reference(
        logits,
        batch,
        teacher,
        temperature,
        lambda z: topk_kd_loss(z, values, ids, temperature, mask, tail_samples=2),
    )
    at_t = torch.log_softmax(logits.float() / temperature, -1)  # read at the KD's temperature
    torch.testing.assert_close(ctx.teacher_read.sparse, at_t.gather(-1, ids))
    assert ctx.teacher_read.dense is None


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_residual_cache_reads_the_prior_with_the_gather_without_changing_loss_or_gradient(
    temperature,
):
    """With the control-variate codec, LossContext.teacher_read also reads the student along the
    codec's prior (one op, `losses.reads`); values and gradients equal F.cross_entropy and
    residual_kd_loss computing everything from the logits."""
    g = torch.Generator().manual_seed(5)
    vocab, layout = 20, Layout(3, 4, 20)
    teacher_lp = (torch.randn(4 * 5, vocab, generator=g) * 1.5).log_softmax(-1)
    codec = Residual()
    prior = {k: torch.from_numpy(v) for k, v in codec.prepare(lambda: [teacher_lp], layout).items()}
    values, ids = codec.sample(teacher_lp, layout, torch.Generator().manual_seed(0), prior)
    values, ids = values.float().reshape(4, 5, -1), ids.reshape(4, 5, -1)
    batch = padded_batch(g, vocab)
    teacher = CachedOutput(
        values=values,
        ids=ids,
        tail_samples=layout.tail_samples,
        softening_temperature=temperature,
        estimator=codec.estimator(prior),
        vectors=codec.dense_vectors(prior),
    )
    logits = torch.randn(4, 5, vocab, generator=g, dtype=torch.float64)
    pi, mask = prior["prior"].float(), batch.tgt_mask

    ctx = assert_matches_reference(
        logits,
        batch,
        teacher,
        temperature,
        lambda z: residual_kd_loss(
            z, values, ids, temperature, mask, None, 4, temperature, prior=pi
        ),
    )
    at_t = torch.log_softmax(logits.float() / temperature, -1)
    torch.testing.assert_close(ctx.teacher_read.dense, (at_t @ pi)[..., None])


def test_at_another_temperature_the_gold_read_leaves_the_teacher_read_undone():
    """With the KD term weighted 0 (a schedule's end, say) no softmax at T is computed."""
    g = torch.Generator().manual_seed(4)
    batch = padded_batch(g, 20)
    ids = torch.randint(0, 20, (4, 5, 6), generator=g)
    teacher = CachedOutput(values=torch.zeros(4, 5, 6), ids=ids, tail_samples=2)
    logits = torch.randn(4, 5, 20, generator=g)
    ctx = LossContext(SimpleNamespace(logits=logits), batch, 0, teacher, 2.0)
    want = torch.log_softmax(logits, -1).gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(ctx.gold_read, want)
    assert "kd_log_probs" not in vars(ctx)  # cached properties live in the instance dict
    assert ctx.teacher_read.sparse.shape == (4, 5, 6) and "kd_log_probs" in vars(ctx)
