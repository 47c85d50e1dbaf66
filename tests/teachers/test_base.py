"""The teacher interface: what callers may ask every teacher (no probing of its class)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from distillab.losses.topk import topk_kd_loss
from distillab.models import Seq2Seq
from distillab.teachers import CachedTeacher, Teacher
from distillab.teachers.outputs import LogitsOutput
from tests.conftest import make_batch


class Plain(Teacher):
    """A teacher without distillab weights (like a Hugging Face one)."""

    identity = "f" * 64
    vocab_hash = ""

    def outputs(self, batch):
        return LogitsOutput(logits=[torch.zeros(*batch.tgt_in.shape, 20)], weights=[1.0])


class Weighted(Plain):
    def __init__(self) -> None:
        self.net = Seq2Seq(20, pad_id=0, emb_dim=8, hidden_size=8, num_topics=3)

    @property
    def model(self) -> Seq2Seq:
        return self.net

    @property
    def source(self) -> str:
        return "somewhere/teacher.ckpt"


def test_defaults_name_the_class_and_have_no_network():
    t = Plain()
    assert t.source == "Plain" and t.model is None and t.hidden_size is None


def test_a_cached_teacher_answers_for_the_teacher_it_serves():
    cache = SimpleNamespace(tail_samples=0, softening_temperature=1.0)
    assert CachedTeacher(Plain(), cache).model is None
    base = Weighted()
    served = CachedTeacher(base, cache)
    assert served.model is base.net and served.source == "somewhere/teacher.ckpt"


def test_a_cached_teacher_runs_the_heads_on_what_the_heads_read():
    """The task heads are not cached: the wrapped network's encoder serves them, on the
    batch's `head_src` where it has one."""
    base = Weighted().net.eval()
    values = torch.zeros(2, 3, 4)
    cache = SimpleNamespace(
        tail_samples=0,
        softening_temperature=1.0,
        estimator=topk_kd_loss,  # the plain top-k loss
        dense_vectors=None,
        batch=lambda index, n, mask: (values, values.long()),
    )
    served = CachedTeacher(SimpleNamespace(model=base, weight=1.0), cache)
    head_src = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    batch = make_batch(2, head_src=head_src, head_src_mask=head_src != 0)
    out = served.outputs(batch)
    with torch.no_grad():
        want, _ = base.heads(head_src, head_src != 0)
        from_src, _ = base.heads(batch.src, batch.src_mask)
    torch.testing.assert_close(out.topic_logits, want)
    assert not torch.allclose(out.topic_logits, from_src)
