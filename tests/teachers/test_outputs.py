"""What a teacher gives the objective: the cached form carries the cache's own softening
temperature to the top-k loss, apart from the distillation temperature of the step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from distillab.losses import topk_kd_loss
from distillab.losses.context import LossContext
from distillab.losses.terms import LogitKD
from distillab.teachers import CachedTeacher
from tests.conftest import make_batch
from tests.teachers.test_base import Plain


def cached_teacher(softening: float) -> CachedTeacher:
    """A teacher served from a (fake) cache softened at `softening`: top-5 of random logits."""
    g = torch.Generator().manual_seed(1)
    log_probs = (torch.randn(2, 3, 20, generator=g) / softening).log_softmax(-1)
    values, ids = log_probs.topk(5, -1)
    cache = SimpleNamespace(
        tail_samples=0,
        softening_temperature=softening,
        estimator=topk_kd_loss,  # the plain top-k loss
        dense_vectors=None,
        batch=lambda index, n, mask: (values.half(), ids),
    )
    return CachedTeacher(Plain(), cache)


def test_the_cache_serves_its_softening_temperature_to_the_topk_loss():
    batch = make_batch(2, tgt_len=3)
    out = cached_teacher(2.0).outputs(batch)
    assert out.softening_temperature == 2.0
    student = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(2))
    # the distillation temperature of this step (1.0) is not the cache's (2.0): the loss
    # re-softens the cached target by their ratio
    ctx = LossContext(SimpleNamespace(logits=student), batch, 0, teacher=out, temperature=1.0)
    got = LogitKD()(ctx)
    mask = batch.tgt_mask
    want = topk_kd_loss(student, out.values, out.ids, 1.0, mask, softening_temperature=2.0)
    torch.testing.assert_close(got, want)
    as_if_unsoftened = topk_kd_loss(student, out.values, out.ids, 1.0, mask)
    assert got.item() != pytest.approx(as_if_unsoftened.item(), rel=1e-3)
