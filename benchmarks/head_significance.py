"""Are the task heads better than the baselines, beyond the noise of the evaluation split?

    python benchmarks/head_significance.py teacher=PATH.ckpt scratch=PATH.ckpt ...
        [--overrides experiment=quickstart task=multi] [--boot 1000] [--json FILE]

Topic and rating label whole conversations, and every example of a conversation shares them,
so a split's head metrics come from its ~190 conversations, not its ~7,500 examples. For each
checkpoint and split (val, test) this prints the head's topic accuracy minus the majority
class's and its rating MAE minus the median rating's (of the whole training split, every
example: `comparison.json`'s `baseline_majority` takes the students' training rows), each with
a 95% interval from resampling whole conversations (seeded).
Beside them, a rule that reads no text: each rating predicted by the training median of its
conversation's length decile (in tokens), the signal `task.conversation_bag` gives the heads.

The data comes from `--overrides` (the run's own); a checkpoint trained on other data (its
data fingerprint differs) is refused.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from distillab.modules.seq2seq import Seq2SeqModule
from distillab.pipelines.baselines import labels
from distillab.train import CONF_DIR

SPLITS = ("val", "test")


def conversation_lengths(split, conv: np.ndarray) -> np.ndarray:
    """Tokens of each conversation ``conv`` of an encoded split."""
    start, end = split.conversation_span(conv)
    return end - start


@torch.no_grad()
def predictions(module, loader) -> tuple[np.ndarray, np.ndarray]:
    """(predicted topic, predicted rating) per example, in the dataset's row order."""
    rows, topics, ratings = [], [], []
    for batch in loader:
        out = module(batch)
        rows.append(batch.index)
        topics.append(out.topic_logits.argmax(-1))
        ratings.append(out.rating)
    order = torch.cat(rows).argsort()
    return torch.cat(topics)[order].numpy(), torch.cat(ratings)[order].numpy()


def interval(diff: np.ndarray, conv: np.ndarray, boot: int, seed: int = 0) -> tuple[float, float]:
    """95% interval of ``diff.mean()`` resampling whole conversations."""
    rng = np.random.default_rng(seed)
    convs, inverse = np.unique(conv, return_inverse=True)
    sums = np.bincount(inverse, weights=diff)
    counts = np.bincount(inverse)
    draws = rng.integers(0, len(convs), size=(boot, len(convs)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="NAME=PATH.ckpt")
    ap.add_argument("--overrides", nargs="*", default=["experiment=quickstart", "task=multi"])
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--json")
    args = ap.parse_args()
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("train", overrides=args.overrides)
    torch.set_num_threads(int(cfg.threads))
    dm = instantiate(cfg.data, conversation_bag=True)  # for any head that reads it
    dm.load()
    # the baselines and the length rule learn from the whole training split (every example)
    train = dm.splits["train"]
    train_conv = train.examples[:, 0]
    train_topic, train_rating = train.topic[train_conv], train.rating[train_conv]
    majority = int(np.bincount(train_topic).argmax())
    rated = ~np.isnan(train_rating)
    median = float(np.median(train_rating[rated]))
    log_len = np.log1p(conversation_lengths(train, train_conv))[rated]
    edges = np.quantile(log_len, np.linspace(0, 1, 11)[1:-1])
    bins = np.digitize(log_len, edges)
    by_length = np.array([np.median(train_rating[rated][bins == b]) for b in range(10)])

    models = {}
    for spec in args.checkpoints:
        name, _, path = spec.partition("=")
        module = Seq2SeqModule.load_from_checkpoint(path, map_location="cpu").eval()
        if module.hparams.get("data_fingerprint") != dm.fingerprint:
            sys.exit(f"{path}: trained on other data (fingerprint differs); pass its overrides")
        models[name] = module
    results: dict = {}
    print("| model | split | topic acc | - majority [95%] | rating MAE | - median [95%] |")
    print("|---|---|---|---|---|---|")
    for split in SPLITS:
        ds = dm.datasets[split]
        topic, rating = labels(ds)
        conv = ds.split.examples[ds.rows, 0]
        ok = ~np.isnan(rating)
        base_hit = (topic == majority).astype(float)
        base_err = np.abs(rating[ok] - median)
        log_len = np.log1p(conversation_lengths(ds.split, conv))
        rule = by_length[np.digitize(log_len[ok], edges)]
        rows = {"length-decile median (no text)": (None, np.abs(rating[ok] - rule))}
        loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
        for name, module in models.items():
            pt, pr = predictions(module, loader)
            rows[name] = ((pt == topic).astype(float), np.abs(pr[ok] - rating[ok]))
        for name, (hit, err) in rows.items():
            entry = {"rating_mae": float(err.mean()), "median_mae": float(base_err.mean())}
            entry["rating_diff"] = float((err - base_err).mean())
            entry["rating_ci"] = interval(err - base_err, conv[ok], args.boot)
            acc = diff_t = "-"
            if hit is not None:
                entry["topic_acc"], entry["majority_acc"] = (
                    float(hit.mean()),
                    float(base_hit.mean()),
                )
                entry["topic_diff"] = float((hit - base_hit).mean())
                entry["topic_ci"] = interval(hit - base_hit, conv, args.boot)
                lo, hi = entry["topic_ci"]
                acc = f"{entry['topic_acc']:.3f}"
                diff_t = f"{entry['topic_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            lo, hi = entry["rating_ci"]
            print(
                f"| {name} | {split} | {acc} | {diff_t} | {entry['rating_mae']:.3f} "
                f"| {entry['rating_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] |"
            )
            results[f"{name}/{split}"] = entry
    print(f"majority topic {majority}, median rating {median:.3f} (training split)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
