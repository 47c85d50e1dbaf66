"""How much the task heads' input says about their labels: a bag-of-words linear probe of the
chit-chat topic (35 prompts + none) and rating, from the generation context (the last
`--context-turns` turns before the target, what the heads read with `data.head_turns=0`) vs the
conversation's opening turns (`data.head_turns=N`), beside the majority and median baselines.

    python benchmarks/head_probe.py [--train-examples 20000] [--context-turns 3]
        [--head-turns 3] [--epochs 8] [--json FILE]

Splits are the data module's (by conversation, seed 0, 5% / 5%); examples are every target
turn, as the models see them. Features: the 4,000 most frequent lowercased words of the
training conversations, present or not. The probe: one linear layer per label (softmax for
the topic, sigmoid for the rating), Adam, `--epochs` passes over a seeded sample of
`--train-examples` training examples; scored on every validation example.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from distillab.data.examples import build_examples, split_conversations
from distillab.data.sources import chitchat_source

WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def length_median_mae(len_train, r_train, len_val, r_val) -> float:
    """MAE of predicting each rating by the training median of its conversation-length
    quartile (quartiles of the training examples' conversation lengths)."""
    edges = torch.quantile(len_train.float(), torch.tensor([0.25, 0.5, 0.75]))
    b_train, b_val = torch.bucketize(len_train, edges), torch.bucketize(len_val, edges)
    overall = r_train.median()
    medians = torch.stack(
        [r_train[b_train == b].median() if (b_train == b).any() else overall for b in range(4)]
    )
    return float((medians[b_val] - r_val).abs().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-examples", type=int, default=20000)
    ap.add_argument("--context-turns", type=int, default=3)
    ap.add_argument("--head-turns", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.manual_seed(0)
    convs = chitchat_source().conversations
    splits = split_conversations(convs, 0.05, 0.05, seed=0)
    topics = ["none"] + sorted({c.topic for c in convs if c.topic})
    index = {t: i for i, t in enumerate(topics)}
    counts = Counter(w for c in splits["train"] for t in c.turns for w in words(t))
    vocab = {w: i for i, (w, _) in enumerate(counts.most_common(4000))}

    def views(
        name: str, limit: int | None
    ) -> tuple[dict[str, list[str]], torch.Tensor, torch.Tensor]:
        part = splits[name]
        examples = build_examples(part, 1, 64, True, args.context_turns)
        if limit is not None and limit < len(examples):
            keep = np.random.default_rng(0).choice(len(examples), limit, replace=False)
            examples = [examples[i] for i in sorted(keep)]
        texts: dict[str, list[str]] = {"context": [], "opening": [], "whole": []}
        for e in examples:
            turns = part[e.conv].turns
            texts["context"].append(" ".join(turns[max(0, e.turn - args.context_turns) : e.turn]))
            texts["opening"].append(" ".join(turns[: args.head_turns]))
            texts["whole"].append(" ".join(turns))  # what a whole-conversation head would read
        topic = torch.tensor([index[part[e.conv].topic or "none"] for e in examples])
        rating = [part[e.conv].rating for e in examples]
        lengths = torch.tensor([len(part[e.conv].turns) for e in examples])
        return texts, topic, torch.tensor([np.nan if r is None else r for r in rating]), lengths

    def features(texts: list[str]) -> torch.Tensor:
        x = torch.zeros(len(texts), len(vocab))
        for i, text in enumerate(texts):
            ids = [vocab[w] for w in words(text) if w in vocab]
            x[i, ids] = 1.0
        return x

    train, y_train, r_train, len_train = views("train", args.train_examples)
    val, y_val, r_val, len_val = views("val", None)
    rated_train, rated_val = ~r_train.isnan(), ~r_val.isnan()
    majority = int(torch.bincount(y_train).argmax())
    median = float(r_train[rated_train].median())
    results = {
        "majority_topic_acc": float((y_val == majority).float().mean()),
        "chance_topic_acc": 1 / len(topics),
        "median_rating_mae": float((r_val[rated_val] - median).abs().mean()),
        "mean_rating_mae": float((r_val[rated_val] - r_train[rated_train].mean()).abs().mean()),
        # not text: the median rating of training conversations of a similar length (quartile
        # of their turn count), a label of the whole conversation no bounded input reveals
        "length_rating_mae": length_median_mae(
            len_train[rated_train], r_train[rated_train], len_val[rated_val], r_val[rated_val]
        ),
    }
    for view in ("context", "opening", "whole"):
        x_train, x_val = features(train[view]), features(val[view])
        topic_head = torch.nn.Linear(len(vocab), len(topics))
        rating_head = torch.nn.Linear(len(vocab), 1)
        params = [*topic_head.parameters(), *rating_head.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-5)
        for _ in range(args.epochs):
            for b in torch.randperm(len(y_train)).split(256):
                loss = F.cross_entropy(topic_head(x_train[b]), y_train[b])
                rated = b[rated_train[b]]
                if len(rated):
                    pred = torch.sigmoid(rating_head(x_train[rated])).squeeze(-1)
                    loss = loss + F.mse_loss(pred, r_train[rated])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            acc = (topic_head(x_val).argmax(-1) == y_val).float().mean()
            pred = torch.sigmoid(rating_head(x_val[rated_val])).squeeze(-1)
            mae = (pred - r_val[rated_val]).abs().mean()
        results[f"{view}_topic_acc"], results[f"{view}_rating_mae"] = float(acc), float(mae)
    print(f"train examples {len(y_train):,}, val examples {len(y_val):,}")
    print("| input | val topic acc | val rating MAE |\n|---|---|---|")
    print(f"| chance | {results['chance_topic_acc']:.3f} | - |")
    print(
        f"| majority topic / median rating | {results['majority_topic_acc']:.3f} "
        f"| {results['median_rating_mae']:.3f} |"
    )
    print(f"| mean rating | - | {results['mean_rating_mae']:.3f} |")
    print(f"| median rating of its length quartile | - | {results['length_rating_mae']:.3f} |")
    for view, label in (
        ("context", f"last {args.context_turns} turns (the generation context)"),
        ("opening", f"first {args.head_turns} turns"),
        ("whole", "the whole conversation (what task.conversation_bag adds)"),
    ):
        acc, mae = results[f"{view}_topic_acc"], results[f"{view}_rating_mae"]
        print(f"| bag of words, {label} | {acc:.3f} | {mae:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
