"""Evaluation metrics, all torchmetrics: one `EvalMetrics` per stage (val, test)."""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.text import BLEUScore, Perplexity, ROUGEScore
from torchmetrics.utilities import dim_zero_cat

from distillab.utils.metric_names import staged


class DistinctN(Metric):
    """distinct-n: unique n-grams / all n-grams over every decoded response (Li et al. 2016).

    The state is a list of tensors of 63-bit n-gram hashes (blake2b, the same in every
    process), so torchmetrics gathers it across DDP ranks like any tensor state: strings
    would not be synchronised. Collisions are negligible at 2**63."""

    full_state_update = False

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.add_state("hashes", default=[], dist_reduce_fx="cat")

    def update(self, texts: list[str]) -> None:
        grams = []
        for text in texts:
            toks = text.split()
            grams += [" ".join(toks[i : i + self.n]) for i in range(len(toks) - self.n + 1)]
        self.hashes.append(torch.tensor([ngram_hash(g) for g in grams], dtype=torch.long))

    def compute(self) -> Tensor:
        hashes = self.hashes  # a list, or one tensor after a DDP sync
        if isinstance(hashes, list):
            hashes = dim_zero_cat(hashes) if hashes else torch.zeros(0, dtype=torch.long)
        total = hashes.numel()
        return torch.tensor(torch.unique(hashes).numel() / total if total else 0.0)


def ngram_hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big") >> 1


def anywhere(flag: bool) -> bool:
    """`flag` on any DDP rank (all ranks must agree on which metrics to compute: computing
    one syncs it across ranks); `flag` itself in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class EvalMetrics(nn.Module):
    """Token-level metrics on every batch, text metrics on greedy decodes, task-head metrics."""

    def __init__(self, vocab_size: int, pad_id: int, num_topics: int, rating: bool) -> None:
        super().__init__()
        self.ppl = Perplexity(ignore_index=pad_id)
        self.token_acc = MulticlassAccuracy(vocab_size, ignore_index=pad_id, average="micro")
        self.bleu = BLEUScore(n_gram=4)
        self.rouge = ROUGEScore(rouge_keys="rougeL")
        self.distinct1, self.distinct2 = DistinctN(1), DistinctN(2)
        self.topic_acc = MulticlassAccuracy(num_topics, average="micro") if num_topics else None
        self.topic_f1 = MulticlassF1Score(num_topics, average="macro") if num_topics else None
        self.rating_mae = MeanAbsoluteError() if rating else None

    def update_tokens(self, logits: Tensor, targets: Tensor) -> None:
        self.ppl.update(logits.float(), targets)
        self.token_acc.update(logits.argmax(-1).flatten(), targets.flatten())

    def update_text(self, hyps: list[str], refs: list[str]) -> None:
        self.bleu.update(hyps, [[r] for r in refs])
        self.rouge.update(hyps, refs)
        self.distinct1.update(hyps)
        self.distinct2.update(hyps)

    def update_heads(self, topic_logits, topic, rating, rating_target, rating_mask) -> None:
        if self.topic_acc is not None and topic_logits is not None:
            self.topic_acc.update(topic_logits, topic)
            self.topic_f1.update(topic_logits, topic)
        if self.rating_mae is not None and rating is not None and rating_mask.any():
            self.rating_mae.update(rating[rating_mask], rating_target[rating_mask])

    def compute(self, prefix: str) -> dict[str, Tensor]:
        out = {"ppl": self.ppl.compute(), "token_acc": self.token_acc.compute()}
        if anywhere(self.distinct1.update_called):
            for d in (self.distinct1, self.distinct2):
                if not d.update_called:  # this rank decoded nothing: an empty share
                    d.update([])
            out.update(
                bleu=self.bleu.compute(),
                rougeL=self.rouge.compute()["rougeL_fmeasure"],
                distinct1=self.distinct1.compute(),
                distinct2=self.distinct2.compute(),
            )
        if self.topic_acc is not None and anywhere(self.topic_acc.update_called):
            out.update(topic_acc=self.topic_acc.compute(), topic_f1=self.topic_f1.compute())
        if self.rating_mae is not None and anywhere(self.rating_mae.update_called):
            out["rating_mae"] = self.rating_mae.compute()
        return {staged(prefix, k): v for k, v in out.items()}  # declared names only

    def reset(self) -> None:
        for m in self.children():
            m.reset()
