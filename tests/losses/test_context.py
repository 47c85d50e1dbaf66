"""LossContext: the student's log-probabilities read once per distribution for every term."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from distillab.losses.context import LossContext
from tests.conftest import make_batch


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_gold_ce_and_cached_kd_share_one_gather_without_changing_loss_or_gradient(temperature):
    """The gold CE and the cached KD read the student's log-probs through one gather at T=1
    (LossContext.picked; at T=2 the KD reads its own softmax); values and gradients equal
    F.cross_entropy and topk_kd_loss."""
    from distillab.losses import topk_kd_loss
    from distillab.losses.terms import GoldCE, LogitKD
    from distillab.teachers.outputs import CachedOutput

    g = torch.Generator().manual_seed(3)
    tgt = torch.randint(3, 20, (4, 5), generator=g)
    tgt[1, 3:] = 0  # padding
    batch = make_batch(4, tgt_len=5, tgt_out=tgt, tgt_mask=tgt != 0)
    values = torch.log_softmax(torch.randn(4, 5, 6, generator=g), -1)
    ids = torch.randint(0, 20, (4, 5, 6), generator=g)
    teacher = CachedOutput(values=values, ids=ids, tail_samples=2)
    logits = torch.randn(4, 5, 20, generator=g, dtype=torch.float64)

    def losses(shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = logits.clone().requires_grad_()
        if shared:
            ctx = LossContext(SimpleNamespace(logits=z), batch, 0, teacher, temperature)
            total = GoldCE()(ctx) + LogitKD()(ctx)
        else:
            ce = torch.nn.functional.cross_entropy(z.flatten(0, 1), tgt.flatten(), ignore_index=0)
            kd = topk_kd_loss(z, values, ids, temperature, tgt != 0, tail_samples=2)
            total = ce + kd
        total.backward()
        return total.detach(), z.grad

    (got, got_grad), (want, want_grad) = losses(True), losses(False)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
    ctx = LossContext(SimpleNamespace(logits=logits), batch, 0, teacher, temperature)
    at_t = torch.log_softmax(logits.float() / temperature, -1)  # read at the KD's temperature
    torch.testing.assert_close(ctx.picked.sparse, at_t.gather(-1, ids))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_residual_cache_reads_the_prior_with_the_gather_without_changing_loss_or_gradient(
    temperature,
):
    """With the control-variate codec, LossContext.picked also reads the student along the
    codec's prior (one op, `losses.reads`); values and gradients equal F.cross_entropy and
    residual_kd_loss computing everything from the logits."""
    from distillab.losses.residual import residual_kd_loss
    from distillab.losses.terms import GoldCE, LogitKD
    from distillab.teachers.codecs.base import Layout
    from distillab.teachers.codecs.residual import Residual
    from distillab.teachers.outputs import CachedOutput

    g = torch.Generator().manual_seed(5)
    vocab, layout = 20, Layout(3, 4, 20)
    teacher_lp = (torch.randn(4 * 5, vocab, generator=g) * 1.5).log_softmax(-1)
    codec = Residual()
    prior = {k: torch.from_numpy(v) for k, v in codec.prepare(lambda: [teacher_lp], layout).items()}
    values, ids = codec.sample(teacher_lp, layout, torch.Generator().manual_seed(0), prior)
    values, ids = values.float().reshape(4, 5, -1), ids.reshape(4, 5, -1)
    tgt = torch.randint(3, vocab, (4, 5), generator=g)
    tgt[2, 2:] = 0  # padding
    batch = make_batch(4, tgt_len=5, tgt_out=tgt, tgt_mask=tgt != 0)
    teacher = CachedOutput(
        values=values,
        ids=ids,
        tail_samples=layout.tail_samples,
        softening_temperature=temperature,
        estimator=codec.estimator(prior),
        vectors=codec.dense_vectors(prior),
    )
    logits = torch.randn(4, 5, vocab, generator=g, dtype=torch.float64)

    def losses(shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = logits.clone().requires_grad_()
        if shared:
            ctx = LossContext(SimpleNamespace(logits=z), batch, 0, teacher, temperature)
            assert ctx.picked.dense.shape == (4, 5, 1)
            total = GoldCE()(ctx) + LogitKD()(ctx)
        else:
            ce = torch.nn.functional.cross_entropy(z.flatten(0, 1), tgt.flatten(), ignore_index=0)
            pi = prior["prior"].float()
            kd = residual_kd_loss(
                z, values, ids, temperature, tgt != 0, None, 4, temperature, prior=pi
            )
            total = ce + kd
        total.backward()
        return total.detach(), z.grad

    (got, got_grad), (want, want_grad) = losses(True), losses(False)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
