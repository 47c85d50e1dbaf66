"""Every metric distillab writes declares whether lower is better; nothing is guessed."""

import pytest
import torch

from distillab.errors import DistillabError
from distillab.modules.metrics import EvalMetrics
from distillab.pipelines.compare import COLUMNS
from distillab.report.plots import metric_label
from distillab.utils.metric_names import EVAL, find, lower_is_better, staged


def test_eval_metrics_names_are_the_declared_ones():
    m = EvalMetrics(vocab_size=7, pad_id=0, num_topics=3, rating=True)
    m.update_tokens(torch.randn(2, 4, 7), torch.randint(1, 7, (2, 4)))
    m.update_text(["a b c", "a a"], ["a b", "a c"])
    mask = torch.tensor([True, False])
    m.update_heads(torch.randn(2, 3), torch.tensor([0, 2]), torch.rand(2), torch.rand(2), mask)
    assert list(m.compute("test")) == [f"test/{n}" for n in EVAL]


def test_written_names_are_declared_with_their_direction():
    for _, name, _ in COLUMNS:  # the quickstart's table
        assert find(name) is not None, name
    assert lower_is_better("val/ppl") and lower_is_better("test/rating_mae")
    assert not lower_is_better("val/topic_f1") and not lower_is_better("val/teacher_agreement")
    assert lower_is_better("val/attention_js") and not lower_is_better("val/ppl_gain")
    assert lower_is_better("compression/params_nonzero")
    assert not lower_is_better("compression/export_agreement_int8")
    assert not lower_is_better("compression/sparsity_by_layer/decoder.gru.weight_hh_l0")
    assert lower_is_better("baseline_majority/val/rating_mae")
    assert lower_is_better("train/kd")  # a loss term of the training log
    assert metric_label("val/bleu") == "val/bleu (corpus BLEU-4, 0-1, higher is better)"


def test_undeclared_names_are_errors():
    with pytest.raises(DistillabError, match="'val/bleu4': unknown.*did you mean val/bleu"):
        staged("val", "bleu4")
    for name in ("bleu", "student/val/ppl", "compression/metrics_after/ppl", "weight/kd"):
        with pytest.raises(DistillabError, match=name):
            lower_is_better(name)
