"""Head terms: distillation terms read their own settings, not only the context's; the gold
rating terms fit what they say they fit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from distillab.losses.context import LossContext
from distillab.losses.kd import kd_loss
from distillab.losses.terms import RatingL1, RatingMSE, TopicKD
from tests.conftest import make_batch


def context(temperature: float) -> LossContext:
    g = torch.Generator().manual_seed(0)
    student = SimpleNamespace(topic_logits=torch.randn(6, 35, generator=g))
    teacher = SimpleNamespace(topic_logits=3 * torch.randn(6, 35, generator=g))
    return LossContext(
        student=student, batch=make_batch(6), pad_id=0, teacher=teacher, temperature=temperature
    )


def test_topic_kd_follows_the_distillation_temperature_by_default():
    ctx = context(2.0)
    want = kd_loss(ctx.student.topic_logits, ctx.teacher.topic_logits, 2.0)
    torch.testing.assert_close(TopicKD()(ctx), want)


def test_topic_kd_head_temperature_overrides_it():
    ctx = context(1.0)
    got = TopicKD(temperature=4.0)(ctx)
    torch.testing.assert_close(
        got, kd_loss(ctx.student.topic_logits, ctx.teacher.topic_logits, 4.0)
    )
    assert not torch.allclose(got, TopicKD()(ctx))


def rating_context(pred: torch.Tensor, rating: list[float], rated: list[bool]) -> LossContext:
    batch = make_batch(len(rating), rating=torch.tensor(rating), rating_mask=torch.tensor(rated))
    return LossContext(student=SimpleNamespace(rating=pred), batch=batch, pad_id=0)


def test_rating_terms_skip_unrated_conversations():
    ctx = rating_context(torch.tensor([0.5, 0.9, 0.0]), [0.2, 0.0, 1.0], [True, False, True])
    torch.testing.assert_close(RatingL1()(ctx), torch.tensor((0.3 + 1.0) / 2))
    torch.testing.assert_close(RatingMSE()(ctx), torch.tensor((0.09 + 1.0) / 2))


def test_rating_l1_fits_the_median_and_mse_the_mean():
    """A constant prediction trained on skewed ratings: absolute error settles at their
    median (the baseline `rating_mae` is compared with), squared error at their mean."""
    ratings = [0.4, 0.4, 0.4, 0.5, 1.0, 1.0]  # median 0.4, mean 0.617
    fitted = {}
    for term in (RatingL1(), RatingMSE()):
        p = torch.tensor(0.0, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.02)
        for _ in range(3000):
            ctx = rating_context(p.expand(6), ratings, [True] * 6)
            opt.zero_grad()
            term(ctx).backward()
            opt.step()
        fitted[type(term).__name__] = float(p)
    assert fitted["RatingL1"] == pytest.approx(0.4, abs=0.02)
    assert fitted["RatingMSE"] == pytest.approx(sum(ratings) / 6, abs=0.01)
