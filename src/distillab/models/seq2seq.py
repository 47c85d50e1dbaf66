"""Attentional GRU encoder-decoder with optional topic / rating heads on the shared encoder.

The auxiliary heads read the *same* encoder states as the decoder so that multi-task signals
(and their distillation losses) shape the representation the generator uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distillab.models.attention import AttentionMemory
from distillab.models.decoder import GRUDecoder
from distillab.models.encoder import GRUEncoder


@dataclass
class Seq2SeqOutput:
    """Everything a distillation loss may want to match between teacher and student."""

    logits: Tensor  # [B, T_tgt, V]
    enc_states: Tensor  # [B, T_src, H] encoder outputs (pads zeroed)
    attn: Tensor  # [B, T_tgt, T_src]
    dec_states: Tensor  # [B, T_tgt, H] attentional hidden states
    topic_logits: Tensor | None  # [B, num_topics] when num_topics > 0
    rating: Tensor | None  # [B] in [0, 1] (sigmoid) when rating_head


def masked_mean(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``states [B, T, H]`` over real positions of ``mask [B, T]`` -> ``[B, H]``."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class Seq2Seq(nn.Module):
    """Shared-embedding GRU seq2seq with Luong attention, greedy and beam-search decoding.

    Inputs use right padding: ``src_mask`` is True on real tokens and must be a prefix per row.
    During generation ``pad_id`` and ``bos_id`` are never produced (their log-probs are set to
    ``-inf`` without renormalising), so pad unambiguously marks "after EOS".
    """

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        emb_dim: int = 128,
        hidden_size: int = 256,
        enc_layers: int = 1,
        dec_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        residual: bool = True,
        attention: str = "multiplicative",
        tie_embeddings: bool = True,
        num_topics: int = 0,
        rating_head: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.hidden_size = hidden_size
        self.dec_layers = dec_layers
        self.tie_embeddings = tie_embeddings
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.emb_dropout = nn.Dropout(dropout)
        self.encoder = GRUEncoder(
            emb_dim, hidden_size, enc_layers, bidirectional, dropout, residual
        )
        self.bridge = nn.Linear(hidden_size, dec_layers * hidden_size)
        self.decoder = GRUDecoder(emb_dim, hidden_size, dec_layers, dropout, attention)
        self.out_dropout = nn.Dropout(dropout)
        if tie_embeddings:
            # H -> E bottleneck, then the (shared) embedding matrix acts as the output matrix.
            self.out_proj: nn.Linear | None = nn.Linear(hidden_size, emb_dim)
            self.out_bias: nn.Parameter | None = nn.Parameter(torch.zeros(vocab_size))
            self.out: nn.Linear | None = None
        else:
            self.out_proj = None
            self.out_bias = None
            self.out = nn.Linear(hidden_size, vocab_size)
        self.topic_head: nn.Sequential | None = None
        if num_topics > 0:
            self.topic_head = nn.Sequential(
                nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, num_topics)
            )
        self.rating_head: nn.Sequential | None = None
        if rating_head:
            mid = max(hidden_size // 2, 1)
            self.rating_head = nn.Sequential(
                nn.Linear(hidden_size, mid), nn.Tanh(), nn.Linear(mid, 1)
            )

    # ------------------------------------------------------------------ building blocks
    def encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(enc_states [B, Ts, H], decoder initial hidden [dec_layers, B, H])``."""
        emb = self.emb_dropout(self.embedding(src))
        enc_states, final = self.encoder(emb, src_mask)
        h0 = torch.tanh(self.bridge(final[-1]))  # [B, L*H]
        h0 = h0.view(src.size(0), self.dec_layers, self.hidden_size).transpose(0, 1)
        return enc_states, h0.contiguous()

    def project(self, attn_hidden: Tensor) -> Tensor:
        """Map attentional states ``[..., H]`` to vocabulary logits ``[..., V]``."""
        if self.out is not None:
            return self.out(attn_hidden)
        assert self.out_proj is not None
        return F.linear(self.out_proj(attn_hidden), self.embedding.weight, self.out_bias)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Seq2SeqOutput:
        """Teacher-forced pass: ``tgt_in [B, Tt]`` starts with BOS (right-padded)."""
        enc_states, h0 = self.encode(src, src_mask)
        y_emb = self.emb_dropout(self.embedding(tgt_in))
        memory = self.decoder.precompute(enc_states, src_mask)
        attn_hidden, _, attn, _ = self.decoder(y_emb, h0, memory)
        logits = self.project(self.out_dropout(attn_hidden))
        topic_logits = rating = None
        if self.topic_head is not None or self.rating_head is not None:
            pooled = masked_mean(enc_states, src_mask)
            if self.topic_head is not None:
                topic_logits = self.topic_head(pooled)
            if self.rating_head is not None:
                rating = torch.sigmoid(self.rating_head(pooled)).squeeze(-1)
        return Seq2SeqOutput(logits, enc_states, attn, attn_hidden, topic_logits, rating)

    # ------------------------------------------------------------------ generation
    def _step_logits(
        self, prev: Tensor, hidden: Tensor, memory: AttentionMemory
    ) -> tuple[Tensor, Tensor]:
        """One decoding step for tokens ``prev [N]`` -> ``(logits [N, V] float, hidden)``."""
        y_emb = self.emb_dropout(self.embedding(prev))
        attn_hidden, hidden = self.decoder.step(y_emb, hidden, memory)
        return self.project(attn_hidden).float(), hidden

    def banned_bias(self, bos_id: int, device: torch.device | None = None) -> Tensor:
        """``[V]``: ``-inf`` at pad and BOS (never generated), 0 elsewhere; added to a step's
        scores (a single add instead of an indexed write per step)."""
        bias = torch.zeros(self.vocab_size, device=device)
        bias[[self.pad_id, bos_id]] = float("-inf")
        return bias

    @torch.inference_mode()  # ~10% faster than no_grad at batch 1 (lighter per-op dispatch)
    def generate(
        self,
        src: Tensor,
        src_mask: Tensor,
        bos_id: int,
        eos_id: int,
        max_len: int,
        beam_size: int = 1,
        length_penalty: float = 1.0,
    ) -> Tensor:
        """Decode responses -> LongTensor ``[B, <=max_len]`` without BOS.

        EOS is included; positions after it are ``pad_id``. ``beam_size == 1`` is batched greedy
        decoding; otherwise batched beam search ranked by ``logp / len ** length_penalty``.
        Call ``eval()`` first for deterministic (dropout-free) output. Runs in inference mode:
        the result is an inference tensor (read it, copy it; don't modify it in place).
        """
        enc, h0 = self.encode(src, src_mask)
        memory = self.decoder.precompute(enc, src_mask)
        banned = self.banned_bias(bos_id, src.device)
        if beam_size <= 1:
            return self._greedy(memory, h0, bos_id, eos_id, max_len, banned)
        return self._beam(memory, h0, bos_id, eos_id, max_len, beam_size, length_penalty, banned)[0]

    def _greedy(
        self,
        memory: AttentionMemory,
        hidden: Tensor,
        bos_id: int,
        eos_id: int,
        max_len: int,
        banned: Tensor,
    ) -> Tensor:
        batch, device = hidden.size(1), hidden.device
        prev = torch.full((batch,), bos_id, dtype=torch.long, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        out: list[Tensor] = []
        for _ in range(max_len):
            logits, hidden = self._step_logits(prev, hidden, memory)
            tok = (logits + banned).argmax(dim=-1).masked_fill(finished, self.pad_id)
            out.append(tok)
            finished = finished | (tok == eos_id)
            prev = tok
            if bool(finished.all()):
                break
        if not out:
            return torch.empty(batch, 0, dtype=torch.long, device=device)
        return torch.stack(out, dim=1)

    def _beam(
        self,
        memory: AttentionMemory,
        h0: Tensor,
        bos_id: int,
        eos_id: int,
        max_len: int,
        k: int,
        length_penalty: float,
        banned: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Batched beam search over ``B*K`` rows -> ``(best tokens, their summed log-probs [B])``.

        Finished hypotheses stay in the beam and can only be extended by ``pad`` at zero cost with
        frozen length, so they compete with live ones on their final normalised score.
        """
        batch, device = h0.size(1), h0.device
        vocab = self.vocab_size
        memory = memory.repeat_interleave(k)
        hidden = h0.repeat_interleave(k, dim=1).contiguous()
        neg_inf = float("-inf")
        scores = torch.full((batch, k), neg_inf, device=device)
        scores[:, 0] = 0.0  # start from a single live hypothesis
        finished = torch.isinf(scores)
        lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
        tokens = torch.empty(batch, k, 0, dtype=torch.long, device=device)
        fin_row = torch.full((vocab,), neg_inf, device=device)
        fin_row[self.pad_id] = 0.0
        row_base = (torch.arange(batch, device=device) * k).unsqueeze(1)
        prev = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
        for t in range(max_len):
            logits, hidden = self._step_logits(prev, hidden, memory)
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
            hidden = hidden[:, (row_base + beam_idx).view(-1)]
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
