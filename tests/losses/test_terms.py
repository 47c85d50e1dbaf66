"""Head distillation terms read their own settings, not only the context's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from distillab.errors import ConfigError
from distillab.losses.kd import kd_loss
from distillab.losses.terms import LossContext, TopicKD


def context(temperature: float) -> LossContext:
    g = torch.Generator().manual_seed(0)
    student = SimpleNamespace(topic_logits=torch.randn(6, 35, generator=g))
    teacher = SimpleNamespace(topic_logits=3 * torch.randn(6, 35, generator=g))
    return LossContext(
        student=student, batch={}, pad_id=0, teacher=teacher, temperature=temperature
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


def test_topic_kd_rejects_a_non_positive_temperature():
    with pytest.raises(ConfigError, match="distill.objective.head_temperature"):
        TopicKD(temperature=0.0)
