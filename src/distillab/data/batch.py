"""What travels from the data loader to the model, the losses and the teachers: named tensors.

A :class:`Batch` is built by `distillab.data.batching.collate` and read by attribute. It is a
slotted dataclass: Lightning moves its tensors to the device (`apply_to_collection` handles
dataclass instances, though not frozen ones: it sets the moved tensors on a copy), and slots
refuse any attribute that is not a field, so nothing is added to a batch on its way. A batch
with other targets (on-policy samples) is a new batch (:meth:`Batch.with_targets`); whether the
targets are gold travels beside it (:class:`TrainingBatch`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from torch import Tensor

from distillab.data.turns import SourceTurns


class ConversationBag(NamedTuple):
    """Whole conversations as one `embedding_bag` input: row i's tokens start at
    ``offsets[i]`` of ``tokens`` (what task heads with `task.conversation_bag` read)."""

    tokens: Tensor  # [N] token ids, the conversations concatenated
    offsets: Tensor  # [B]


@dataclasses.dataclass(slots=True, eq=False)
class Batch:
    """A padded batch of examples (`pad_id` wherever a mask is False)."""

    index: Tensor  # [B] the split's example rows (keys of cached teacher outputs, decodes)
    src: Tensor  # [B, Ts] the generation source: the last context turns with speaker markers
    src_mask: Tensor  # [B, Ts]
    tgt_in: Tensor  # [B, Tt] BOS + the response (teacher forcing input)
    tgt_out: Tensor  # [B, Tt] the response + EOS
    tgt_mask: Tensor  # [B, Tt]
    topic: Tensor  # [B] topic label (0: none)
    rating: Tensor  # [B] the conversation's rating in [0, 1] (0 where unrated)
    rating_mask: Tensor  # [B] whether the conversation is rated
    n_tokens: int  # target tokens (EOS included): a Python int, no host sync to count them
    # what the task heads read when it is not `src` (`data.head_turns` > 0: the
    # conversation's opening); None: the heads read `src` and the model encodes it once
    head_src: Tensor | None = None
    head_src_mask: Tensor | None = None
    # the whole conversations, only when a head reads them (`task.conversation_bag`)
    conversation: ConversationBag | None = None
    # each source token's turn and each turn's speaker, only when the model's attention reads
    # them (`DialogueDataModule(turns=True)`, e.g. model.attention=graph)
    turns: SourceTurns | None = None

    @property
    def size(self) -> int:
        """Rows (examples) in the batch."""
        return int(self.src.shape[0])

    @property
    def head_input(self) -> tuple[Tensor, Tensor]:
        """(tokens, mask) the task heads read: `head_src` where the batch has one, else `src`."""
        if self.head_src is None or self.head_src_mask is None:
            return self.src, self.src_mask
        return self.head_src, self.head_src_mask

    def with_targets(self, tgt_in: Tensor, tgt_out: Tensor, tgt_mask: Tensor) -> Batch:
        """The same sources and labels with other responses (e.g. the student's samples);
        `n_tokens` is recounted from `tgt_mask`."""
        return dataclasses.replace(
            self, tgt_in=tgt_in, tgt_out=tgt_out, tgt_mask=tgt_mask, n_tokens=int(tgt_mask.sum())
        )


class TrainingBatch(NamedTuple):
    """The batch a training step learns from, and whether its responses are gold (False: the
    student's own samples, on-policy distillation; terms that need gold responses skip it)."""

    batch: Batch
    gold: bool = True


__all__ = ["Batch", "ConversationBag", "SourceTurns", "TrainingBatch"]
