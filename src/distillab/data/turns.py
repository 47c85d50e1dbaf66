"""Which context turn each source token belongs to, and who spoke each turn.

A source is ``<other> turn <self> turn ...`` (`DialogueDataset.source`): every turn opens with
its speaker's marker, except a first turn cut on the left by `max_source_len`, whose speaker is
the opposite of the next turn's (speakers alternate in the context as it is assembled). The
turns are read off the markers, so the same function serves the collate function (a typed
`Batch` field) and a model that only has the tokens (decoding, an ONNX export, chat).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

OTHER_SPEAKER, SELF_SPEAKER = 0, 1


class SourceTurns(NamedTuple):
    """The turn structure of a batch of sources."""

    token_turn: Tensor  # [B, Ts] long: the turn (0 = oldest kept) of each token; -1 on pads
    speaker: Tensor  # [B, N] long: 1 <self>, 0 <other>, -1 for a row's padded turns


def source_turns(
    src: Tensor, src_mask: Tensor, self_id: int, other_id: int, n_turns: int | None = None
) -> SourceTurns:
    """The turns of right-padded ``src [B, Ts]``; ``n_turns``: the width ``N`` of ``speaker``
    (None: the batch's most turns; an ONNX export passes ``Ts``, a bound known in the graph)."""
    mask = src_mask.bool()
    is_self = (src == self_id) & mask
    marker = is_self | ((src == other_id) & mask)
    opened = marker[:, :1].long()  # 0: the first turn was cut and lost its marker
    turn = torch.cumsum(marker.long(), dim=1) - opened
    token_turn = torch.where(mask, turn, torch.full_like(turn, -1))
    if n_turns is None:
        n_turns = int(token_turn.max().clamp(min=0)) + 1
    ids = torch.arange(n_turns, device=src.device).view(1, -1, 1)
    member = (token_turn.unsqueeze(1) == ids).to(torch.float32)  # [B, N, Ts]
    real = member.sum(-1) > 0  # [B, N]
    said_self = (member * is_self.unsqueeze(1).to(torch.float32)).sum(-1) > 0
    speaker = said_self.long()
    if n_turns > 1:  # a cut first turn: the opposite of the second turn's speaker
        first = torch.where(opened[:, 0] > 0, speaker[:, 0], 1 - speaker[:, 1])
        speaker = torch.cat([first.unsqueeze(1), speaker[:, 1:]], dim=1)
    return SourceTurns(token_turn, torch.where(real, speaker, torch.full_like(speaker, -1)))
