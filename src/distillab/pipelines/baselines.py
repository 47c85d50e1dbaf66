"""What the task heads must beat: chance and the majority class / mean rating of the training
split, scored on the validation split with the models' own metrics (torchmetrics)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def labels(ds) -> tuple[np.ndarray, np.ndarray]:
    """(topic, rating) of each example of a `DialogueDataset` (rating NaN: unrated)."""
    conv = ds.split.examples[ds.rows, 0]
    return ds.split.topic[conv], ds.split.rating[conv]


def head_baselines(dm, num_topics: int, rating: bool) -> dict[str, dict[str, float]]:
    """`{"baseline_chance": {...}, "baseline_majority": {...}}` with `val/topic_acc`,
    `val/topic_f1` (macro, as the models') and `val/rating_mae` where the task has the head.
    Chance: a uniformly random topic, a uniformly random rating in [0, 1] (expected MAE
    `((y^2 + (1 - y)^2) / 2)`). Majority: the training split's most frequent topic and median
    rating (the constant with the least absolute error; on chit-chat also the most frequent
    rating, both raters leaving the slider at 5)."""
    train_topic, train_rating = labels(dm.datasets["train"])
    val_topic, val_rating = labels(dm.datasets["val"])
    chance: dict[str, float] = {}
    majority: dict[str, float] = {}
    if num_topics:
        top = int(np.bincount(train_topic, minlength=num_topics).argmax())
        target = torch.as_tensor(val_topic)
        pred = torch.full_like(target, top)
        acc = MulticlassAccuracy(num_topics, average="micro")(pred, target)
        f1 = MulticlassF1Score(num_topics, average="macro")(pred, target)
        majority.update({"val/topic_acc": float(acc), "val/topic_f1": float(f1)})
        # a uniform guess: accuracy 1/K; its expected macro F1 per present class c with
        # frequency f_c is 2 f_c (1/K) / (f_c + 1/K), averaged over the classes present
        freq = np.bincount(val_topic, minlength=num_topics) / max(len(val_topic), 1)
        k = 1.0 / num_topics
        present = freq > 0
        chance_f1 = float(np.mean(2 * freq[present] * k / (freq[present] + k)))
        chance.update({"val/topic_acc": k, "val/topic_f1": chance_f1})
    rated = val_rating[~np.isnan(val_rating)]
    if rating and len(rated):
        median = float(np.nanmedian(train_rating))
        majority["val/rating_mae"] = float(np.abs(rated - median).mean())
        chance["val/rating_mae"] = float(((rated**2 + (1 - rated) ** 2) / 2).mean())
    if not chance:
        return {}
    return {"baseline_chance": chance, "baseline_majority": majority}
