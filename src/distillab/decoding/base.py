"""What the strategies share: the banned-token bias, the token-by-token loop, building one from
its config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor

from distillab.decoding.protocol import Decodable, Strategy
from distillab.errors import ConfigError, config_error_in


def banned_bias(model: Decodable, bos_id: int, device: torch.device | None = None) -> Tensor:
    """``[V]``: ``-inf`` at pad and BOS (never generated), 0 elsewhere; added to a step's
    scores (a single add instead of an indexed write per step)."""
    bias = torch.zeros(model.vocab_size, device=device)
    bias[[model.pad_id, bos_id]] = float("-inf")
    return bias


def token_by_token(
    model: Decodable,
    src: Tensor,
    src_mask: Tensor,
    bos_id: int,
    eos_id: int,
    max_len: int,
    pick: Callable[[Tensor], Tensor],
) -> Tensor:
    """Batched left-to-right decoding, one token per row per step: ``pick`` maps a step's
    scores ``[B, V]`` (logits, pad and BOS at ``-inf``) to tokens ``[B]``. Rows that produced
    EOS get pad from then on; the loop stops when every row has."""
    batch, device = src.size(0), src.device
    banned = banned_bias(model, bos_id, device)
    state = model.encode(src, src_mask)
    prev = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out: list[Tensor] = []
    for _ in range(max_len):
        logits, state = model.step(prev, state)
        tok = pick(logits + banned).masked_fill(finished, model.pad_id)
        out.append(tok)
        finished = finished | (tok == eos_id)
        prev = tok
        if bool(finished.all()):
            break
    if not out:
        return torch.empty(batch, 0, dtype=torch.long, device=device)
    return torch.stack(out, dim=1)


def build_strategy(spec: Mapping[str, Any], key: str = "decoding") -> Strategy:
    """The strategy a config node describes (``_target_`` + arguments), e.g.
    ``{"_target_": "distillab.decoding.Beam", "beam_size": 4}``.

    A bad argument raises :class:`ConfigError` naming ``key``, the node's place in the config
    (``distill.seqkd.decoding.top_p=...``), not Hydra's wrapper error.
    """
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(
            f"{key} must name a decoding strategy with _target_ "
            f"(e.g. distillab.decoding.Greedy), got {spec!r}"
        )
    try:
        return instantiate(spec)
    except Exception as e:
        cause = config_error_in(e)
        if cause is None:
            raise
        msg = str(cause)
        if msg.startswith("decoding."):
            msg = key + msg[len("decoding") :]
        raise ConfigError(msg) from e
