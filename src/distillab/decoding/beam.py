"""Beam search ranked by length-normalised log-probability."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from distillab.decoding.base import banned_bias
from distillab.decoding.protocol import Decodable
from distillab.errors import ConfigError, check_range


@dataclass(frozen=True)
class Beam:
    """Batched beam search over ``B * beam_size`` rows, hypotheses ranked by
    ``logp / len ** length_penalty`` (0: raw log-prob, 1: per-token mean)."""

    beam_size: int = 4
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int):
            raise ConfigError(f"decoding.beam_size={self.beam_size!r} must be an integer >= 1")
        check_range("decoding.beam_size", self.beam_size, 1, None)
        check_range("decoding.length_penalty", self.length_penalty)

    def __call__(
        self,
        model: Decodable,
        src: Tensor,
        src_mask: Tensor,
        *,
        bos_id: int,
        eos_id: int,
        max_len: int,
    ) -> Tensor:
        """The best hypothesis per row: tokens ``[B, <=max_len]`` without BOS, EOS included, pad
        after it (an inference tensor)."""
        return self.search(model, src, src_mask, bos_id=bos_id, eos_id=eos_id, max_len=max_len)[0]

    @torch.inference_mode()
    def search(
        self,
        model: Decodable,
        src: Tensor,
        src_mask: Tensor,
        *,
        bos_id: int,
        eos_id: int,
        max_len: int,
    ) -> tuple[Tensor, Tensor]:
        """``(best tokens [B, <=max_len], their summed log-probs [B])``.

        Finished hypotheses stay in the beam and can only be extended by ``pad`` at zero cost with
        frozen length, so they compete with live ones on their final normalised score.
        """
        k, length_penalty = self.beam_size, self.length_penalty
        batch, device = src.size(0), src.device
        vocab, pad_id = model.vocab_size, model.pad_id
        banned = banned_bias(model, bos_id, device)
        state = model.encode(src, src_mask)
        state = model.reorder(state, torch.arange(batch, device=device).repeat_interleave(k))
        neg_inf = float("-inf")
        scores = torch.full((batch, k), neg_inf, device=device)
        scores[:, 0] = 0.0  # start from a single live hypothesis
        finished = torch.isinf(scores)
        lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
        tokens = torch.empty(batch, k, 0, dtype=torch.long, device=device)
        fin_row = torch.full((vocab,), neg_inf, device=device)
        fin_row[pad_id] = 0.0
        row_base = (torch.arange(batch, device=device) * k).unsqueeze(1)
        prev = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
        for t in range(max_len):
            logits, state = model.step(prev, state)
            logp = torch.log_softmax(logits, dim=-1) + banned
            logp = torch.where(finished.unsqueeze(-1), fin_row, logp.view(batch, k, vocab))
            cand = scores.unsqueeze(-1) + logp  # [B, K, V]
            new_len = torch.where(finished, lengths, torch.full_like(lengths, t + 1))
            denom = new_len.clamp(min=1).to(cand.dtype).pow(length_penalty).unsqueeze(-1)
            _, top = (cand / denom).view(batch, -1).topk(k, dim=1)
            beam_idx, tok = top // vocab, top % vocab
            scores = cand.view(batch, -1).gather(1, top)
            was_finished = finished.gather(1, beam_idx)
            lengths = new_len.gather(1, beam_idx)
            tokens = torch.cat(
                [tokens.gather(1, beam_idx.unsqueeze(-1).expand(-1, -1, t)), tok.unsqueeze(-1)],
                dim=-1,
            )
            finished = was_finished | (tok == eos_id) | torch.isinf(scores)
            state = model.reorder(state, (row_base + beam_idx).view(-1))
            prev = tok.view(-1)
            if bool(finished.all()):
                break
        if tokens.size(-1) == 0:
            return torch.empty(batch, 0, dtype=torch.long, device=device), scores[:, 0]
        final = scores / lengths.clamp(min=1).to(scores.dtype).pow(length_penalty)
        best = final.argmax(dim=1)
        rows = torch.arange(batch, device=device)
        out = tokens[rows, best]
        return out[:, : int(lengths[rows, best].max())], scores[rows, best]
