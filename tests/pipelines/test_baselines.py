from types import SimpleNamespace

import numpy as np
import pytest

from distillab.pipelines.baselines import head_baselines


def _ds(topics, ratings):
    """A dataset stand-in: one example per conversation."""
    n = len(topics)
    split = SimpleNamespace(
        examples=np.stack([np.arange(n), np.ones(n, dtype=np.int64)], axis=1),
        topic=np.array(topics),
        rating=np.array(ratings, dtype=np.float32),
    )
    return SimpleNamespace(split=split, rows=np.arange(n))


def test_majority_is_the_commonest_topic_and_the_median_rating():
    train = _ds([2, 2, 2, 1, 0], [0.4, 0.4, 0.4, 1.0, np.nan])
    val = _ds([2, 1, 1, 0], [0.4, 1.0, 0.0, np.nan])
    dm = SimpleNamespace(datasets={"train": train, "val": val})
    out = head_baselines(dm, num_topics=3, rating=True)
    majority, chance = out["baseline_majority"], out["baseline_chance"]
    assert majority["val/topic_acc"] == pytest.approx(0.25)  # topic 2, right once in 4
    # median of the rated training examples is 0.4; |0.4-0.4|, |1-0.4|, |0-0.4|
    assert majority["val/rating_mae"] == pytest.approx((0.0 + 0.6 + 0.4) / 3)
    assert chance["val/topic_acc"] == pytest.approx(1 / 3)
    expected = np.mean([(y**2 + (1 - y) ** 2) / 2 for y in (0.4, 1.0, 0.0)])
    assert chance["val/rating_mae"] == pytest.approx(expected)
    assert "val/rating_mae" not in head_baselines(dm, num_topics=3, rating=False)["baseline_chance"]
