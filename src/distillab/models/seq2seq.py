"""Attentional GRU encoder-decoder with optional topic / rating heads on the shared encoder.

The auxiliary heads read the *same* encoder (and embeddings) as the decoder so that multi-task
signals (and their distillation losses) shape the representation the generator uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distillab.data.batch import Batch, ConversationBag
from distillab.data.turns import SourceTurns, source_turns
from distillab.errors import ConfigError
from distillab.models.attention import AttentionMemory, check_attention
from distillab.models.decoder import GRUDecoder
from distillab.models.encoder import GRUEncoder
from distillab.models.heads import masked_mean, with_conversation
from distillab.models.init import copy_matching


@dataclass
class Seq2SeqOutput:
    """Everything a distillation loss may want to match between teacher and student."""

    logits: Tensor  # [B, T_tgt, V]
    enc_states: Tensor  # [B, T_src, H] encoder outputs (pads zeroed)
    attn: Tensor  # [B, T_tgt, T_src]
    dec_states: Tensor  # [B, T_tgt, H] attentional hidden states
    topic_logits: Tensor | None  # [B, num_topics] when num_topics > 0
    rating: Tensor | None  # [B] in [0, 1] (sigmoid) when rating_head
    # per-layer internals for transfer terms with a layer map (None: the model has one layer
    # to offer, `enc_states` and `attn`)
    layer_states: list[Tensor] | None = None  # each [B, T_src, H]: encoder (context) layers
    layer_attn: list[Tensor] | None = None  # each [B, T_tgt, T_src]: heads averaged


class DecoderState(NamedTuple):
    """What :class:`Seq2Seq` carries between decoding steps; opaque to the strategies."""

    memory: AttentionMemory  # attention memory of each row, precomputed once per batch
    hidden: Tensor  # [dec_layers, N, H] decoder hidden state
    rows: Tensor  # [N] the batch row (source) each state row decodes


class Seq2Seq(nn.Module):
    """Shared-embedding GRU seq2seq with Luong attention.

    Inputs use right padding: ``src_mask`` is True on real tokens and must be a prefix per row.
    Implements the decoding protocol (:class:`distillab.decoding.Decodable`: ``encode``,
    ``step``, ``reorder``); the strategies of :mod:`distillab.decoding` generate with it.
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
        conversation_bag: bool = False,
        attention_heads: int | None = None,
        self_id: int | None = None,
        other_id: int | None = None,
    ) -> None:
        """`attention`: a kind of :mod:`distillab.models.attention` (`attention_heads`: the
        multihead kind's heads); `self_id`, `other_id`: the speaker markers, from which a kind
        that reads the context's turns (graph) finds them where a batch does not carry them
        (decoding, an ONNX export)."""
        super().__init__()
        self.self_id, self.other_id = self_id, other_id
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
        options = {"heads": attention_heads}
        self.decoder = GRUDecoder(emb_dim, hidden_size, dec_layers, dropout, attention, options)
        if self.decoder.attention.reads_turns and None in (self_id, other_id):
            raise ValueError(
                f"attention={attention!r} reads the context's turns: the model needs the "
                "speaker marker ids (self_id, other_id; wired from the data)"
            )
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
        # the heads read the pooled encoder states, and with `conversation_bag` the mean
        # embedding of the whole conversation and its log length in tokens
        self.conversation_bag = conversation_bag
        head_in = hidden_size + (emb_dim + 1 if conversation_bag else 0)
        self.topic_head: nn.Sequential | None = None
        if num_topics > 0:
            self.topic_head = nn.Sequential(
                nn.Linear(head_in, hidden_size), nn.Tanh(), nn.Linear(hidden_size, num_topics)
            )
        self.rating_head: nn.Sequential | None = None
        if rating_head:
            mid = max(hidden_size // 2, 1)
            self.rating_head = nn.Sequential(nn.Linear(head_in, mid), nn.Tanh(), nn.Linear(mid, 1))

    @staticmethod
    def check_config(node: dict, key: str = "model") -> None:
        """The attention kind and its options (`attention_<option>`), before any work (the
        config check calls it; its messages name the key as ``@.<key>``)."""
        hidden = node.get("hidden_size") or 256
        options = {"heads": node.get("attention_heads")}
        try:
            check_attention(
                node.get("attention") or "multiplicative",
                hidden,
                hidden,
                **{k: v for k, v in options.items() if v is not None},
            )
        except ValueError as e:
            raise ValueError(f"@.{e}") from None

    @property
    def reads_turns(self) -> bool:
        """Whether the attention reads the context's turns (`Batch.turns`)."""
        return self.decoder.attention.reads_turns

    def source_turns(
        self, src: Tensor, src_mask: Tensor, turns: SourceTurns | None = None
    ) -> SourceTurns | None:
        """The turns the attention reads: ``turns`` as given (a batch's), else read off the
        speaker markers of ``src``; None when the attention reads none."""
        if not self.reads_turns:
            return None
        if turns is not None:
            return turns
        assert self.self_id is not None and self.other_id is not None
        bound = src.size(1) if torch.onnx.is_in_onnx_export() else None
        return source_turns(src, src_mask, self.self_id, self.other_id, bound)

    # ------------------------------------------------------------------ building blocks
    def encode_source(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
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

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor,
        tgt_in: Tensor,
        head_src: Tensor | None = None,
        head_src_mask: Tensor | None = None,
        conv: ConversationBag | None = None,
        turns: SourceTurns | None = None,
    ) -> Seq2SeqOutput:
        """Teacher-forced pass: ``tgt_in [B, Tt]`` starts with BOS (right-padded).

        The task heads read ``head_src`` (a second pass of the shared encoder) when it is
        another tensor, or else the source's encoder states; and ``conv`` if the model has
        `conversation_bag`; the attention reads ``turns`` (or the turns of the source's
        speaker markers) if its kind reads them."""
        enc_states, h0 = self.encode_source(src, src_mask)
        y_emb = self.emb_dropout(self.embedding(tgt_in))
        turns = self.source_turns(src, src_mask, turns)
        memory = self.decoder.precompute(enc_states, src_mask, turns)
        attn_hidden, _, attn, _ = self.decoder(y_emb, h0, memory)
        logits = self.project(self.out_dropout(attn_hidden))
        if head_src is None or head_src is src or not self.has_heads:
            topic_logits, rating = self.head_outputs(enc_states, src_mask, conv)
        else:
            topic_logits, rating = self.heads(head_src, head_src_mask, conv)
        return Seq2SeqOutput(logits, enc_states, attn, attn_hidden, topic_logits, rating)

    def forward_batch(self, batch: Batch) -> Seq2SeqOutput:
        """The teacher-forced pass on a collated batch (what modules and teachers score)."""
        return self(
            batch.src,
            batch.src_mask,
            batch.tgt_in,
            batch.head_src,
            batch.head_src_mask,
            batch.conversation,
            batch.turns,
        )

    @property
    def has_heads(self) -> bool:
        return self.topic_head is not None or self.rating_head is not None

    def head_features(
        self, enc_states: Tensor, src_mask: Tensor, conv: ConversationBag | None
    ) -> Tensor:
        """What the heads read ``[B, head_in]``: the pooled encoder states, then (with
        `conversation_bag`) the conversation's mean embedding and log length in tokens (/10:
        about [0, 1] up to 20k tokens; no bounded input shows how long a conversation ran)."""
        pooled = masked_mean(enc_states, src_mask)
        if not self.conversation_bag:
            return pooled
        return with_conversation(pooled, self.embedding.weight, conv)

    def head_outputs(
        self, enc_states: Tensor, src_mask: Tensor, conv: ConversationBag | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """(topic logits [B, num_topics], rating [B] in [0, 1]) of the heads this model has."""
        topic_logits = rating = None
        if self.has_heads:
            features = self.head_features(enc_states, src_mask, conv)
            if self.topic_head is not None:
                topic_logits = self.topic_head(features)
            if self.rating_head is not None:
                rating = torch.sigmoid(self.rating_head(features)).squeeze(-1)
        return topic_logits, rating

    def heads(
        self, src: Tensor, src_mask: Tensor, conv: ConversationBag | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """The task heads alone (an encoder pass, no decoder): e.g. a cached teacher's."""
        enc_states, _ = self.encode_source(src, src_mask)
        return self.head_outputs(enc_states, src_mask, conv)

    def init_from(self, teacher: nn.Module, layer_map: list[int] | None = None) -> list[str]:
        """Student from teacher: copy what names and shapes allow (its one-layer stacks take
        no layer map). Returns what was set."""
        if layer_map is not None:
            raise ConfigError("student.layer_map applies to transformer students only")
        return copy_matching(self, teacher)

    # ------------------------------------------------------------------ decoding protocol
    def encode(self, src: Tensor, src_mask: Tensor) -> DecoderState:
        """The decoding state of a batch (:class:`distillab.decoding.Decodable`): encoder,
        bridge and the attention memory, all computed once per batch."""
        enc_states, h0 = self.encode_source(src, src_mask)
        turns = self.source_turns(src, src_mask)
        memory = self.decoder.precompute(enc_states, src_mask, turns)
        return DecoderState(memory, h0, torch.arange(src.size(0), device=src.device))

    def step(self, prev: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step for tokens ``prev [N]`` -> ``(logits [N, V] float, new state)``."""
        y_emb = self.emb_dropout(self.embedding(prev))
        attn_hidden, hidden = self.decoder.step(y_emb, state.hidden, state.memory)
        logits = self.project(attn_hidden)
        if logits.dtype != torch.float32:  # e.g. bf16 autocast; a float .float() is a no-op
            logits = logits.float()  # that an ONNX export would still trace as a Cast node
        return logits, DecoderState(state.memory, hidden, state.rows)

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        """Rows ``index [N']`` of ``state`` (selected, repeated or permuted).

        The attention memory is only copied when a row changes source: a beam search's
        per-step reordering stays within each source's beams and moves just the hidden state.
        """
        rows = state.rows.index_select(0, index)
        memory = state.memory
        if not torch.equal(rows, state.rows):
            memory = memory.index_select(index)
        return DecoderState(memory, state.hidden.index_select(1, index), rows)
