"""On-policy distillation (generalised KD, Agarwal et al. 2024): on a seeded share `lmbda` of
training batches the student answers the batch's contexts itself (sampled, batched, no
gradient through sampling) and learns the teacher's distribution on its own sequences; the
other batches keep their gold targets (or the teacher's decodes with seqKD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from distillab.data.batch import Batch, TrainingBatch
from distillab.decoding import Strategy, build_strategy
from distillab.errors import check_range


def sampled_batch(
    model: torch.nn.Module,
    batch: Batch,
    strategy: Strategy,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_len: int,
) -> Batch:
    """A new batch with `batch`'s targets replaced by `model`'s samples for its sources:
    `tgt_out` the sampled tokens (EOS included, pad after), `tgt_in` BOS + them shifted right,
    `tgt_mask` the non-pad positions, `n_tokens` their count. Sampled in eval mode (no
    dropout) and without gradient; everything else (sources, labels, index) is kept."""
    was_training = model.training
    model.eval()
    try:
        tokens = strategy(
            model, batch.src, batch.src_mask, bos_id=bos_id, eos_id=eos_id, max_len=max_len
        )
    finally:
        model.train(was_training)
    tgt_out = tokens.clone()  # a normal tensor (the strategy's is an inference tensor)
    bos = torch.full_like(tgt_out[:, :1], bos_id)
    tgt_in = torch.cat([bos, tgt_out[:, :-1]], dim=1)
    tgt_mask = tgt_out != pad_id
    tgt_in = tgt_in.masked_fill(~tgt_mask, pad_id)
    return batch.with_targets(tgt_in, tgt_out, tgt_mask)


class OnPolicy:
    """The lmbda coin (its own seeded generator: the same batches go on-policy in every run
    with the same seed) and the sampling strategy."""

    def __init__(
        self, lmbda: float, sampling: Mapping[str, Any], seed: int, enabled: bool = True
    ) -> None:
        check_range("distill.onpolicy.lmbda", lmbda, 0.0, 1.0)
        self.enabled, self.lmbda = bool(enabled), float(lmbda)
        self.strategy = build_strategy(sampling, "distill.onpolicy.sampling")
        self.generator = torch.Generator().manual_seed(int(seed))

    def coin(self) -> bool:
        """Whether this training batch goes on-policy (draws every step, enabled or not)."""
        return self.enabled and bool(torch.rand((), generator=self.generator) < self.lmbda)

    def __call__(self, module: Any, batch: Batch) -> TrainingBatch:
        """`batch` as it is (gold), or with `module.model`'s samples as targets (not gold)."""
        if not self.coin():
            return TrainingBatch(batch)
        hp = module.hparams
        sampled = sampled_batch(
            module.model, batch, self.strategy, hp.bos_id, hp.eos_id, hp.pad_id, hp.max_decode_len
        )
        return TrainingBatch(sampled, gold=False)


__all__ = ["OnPolicy", "sampled_batch"]
