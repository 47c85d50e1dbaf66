"""Task heads (topic classification, rating regression) on pooled context states.

Shared by every model family: the GRU seq2seq pools its encoder states, the transformer
families pool their encoder (seq2seq) or context (causal) states. With `conversation_bag` the
heads also read the conversation's mean embedding and its log length in tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distillab.data.batch import ConversationBag


def masked_mean(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``states [B, T, H]`` over real positions of ``mask [B, T]`` -> ``[B, H]``."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def with_conversation(pooled: Tensor, embedding: Tensor, conv: ConversationBag | None) -> Tensor:
    """``pooled [B, H]`` followed by the conversation's mean embedding (rows of `embedding`)
    and its log length in tokens (/10: about [0, 1] up to 20k tokens; no bounded input shows
    how long a conversation ran)."""
    if conv is None:
        raise ValueError(
            "this model's heads read the whole conversation (conversation_bag=True) but got "
            "none: pass conv=batch.conversation, from data built with conversation_bag=True "
            "(task.conversation_bag=true)"
        )
    bag = F.embedding_bag(conv.tokens, embedding, conv.offsets, mode="mean")
    ends = torch.cat([conv.offsets[1:], conv.offsets.new_tensor([conv.tokens.numel()])])
    log_len = torch.log1p((ends - conv.offsets).to(pooled.dtype)).unsqueeze(-1) / 10
    return torch.cat([pooled, bag.to(pooled.dtype), log_len], dim=-1)


class TaskHeads(nn.Module):
    """The topic head (``num_topics > 0``) and the rating head (sigmoid, in [0, 1]) the task
    asks for, reading ``features [B, in_size]``."""

    def __init__(self, in_size: int, hidden_size: int, num_topics: int, rating_head: bool):
        super().__init__()
        self.topic_head: nn.Sequential | None = None
        if num_topics > 0:
            self.topic_head = nn.Sequential(
                nn.Linear(in_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, num_topics)
            )
        self.rating_head: nn.Sequential | None = None
        if rating_head:
            mid = max(hidden_size // 2, 1)
            self.rating_head = nn.Sequential(nn.Linear(in_size, mid), nn.Tanh(), nn.Linear(mid, 1))

    @property
    def any(self) -> bool:
        return self.topic_head is not None or self.rating_head is not None

    def forward(self, features: Tensor) -> tuple[Tensor | None, Tensor | None]:
        topic = self.topic_head(features) if self.topic_head is not None else None
        rating = None
        if self.rating_head is not None:
            rating = torch.sigmoid(self.rating_head(features)).squeeze(-1)
        return topic, rating
