"""`model=hf_causal`: a GPT-2-style decoder-only transformer (`transformers`' GPT-2).

The context and the response are one sequence: the right-padded source, then `tgt_in` (BOS +
response). The source's padding stays where it is, masked out as keys, and positions count
real tokens only, so each row sees exactly its context followed by its response. The logits
are those of the response positions; the "encoder states" are the last layer's states at the
context positions, and the attention is the response rows' attention on the context
(renormalised over it: a response token also attends to earlier response tokens).
Decoding runs the context once into the key/value cache, then one token per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from distillab.data.batch import ConversationBag
from distillab.models.seq2seq import Seq2SeqOutput
from distillab.models.transformer import (
    EAGER,
    HFModel,
    check_heads,
    float_logits,
    load_pretrained,
)
from distillab.models.transformer_units import FeedForward, Heads, UnitGroup


class CausalState(NamedTuple):
    """The cache (updated in place by each step), the attention mask of everything cached,
    and the next position of each row."""

    cache: Any  # transformers' DynamicCache
    mask: Tensor  # [N, Ts + t] long
    position: Tensor  # [N] long


def positions(mask: Tensor) -> Tensor:
    """Position ids that count real tokens only (pads take their predecessor's)."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


class HFCausal(HFModel):
    """GPT-2 with the run's vocabulary. Size keys: `hidden_size` (n_embd), `layers`,
    `attention_heads`, `ffn_size` (n_inner); `max_positions` (context + response must fit),
    `dropout`. `attn_layer`: the layer whose attention (heads averaged, response rows on the
    context) is `Seq2SeqOutput.attn`. `path`: a local `save_pretrained` directory to start
    from instead (its config decides the sizes). `kept_units`: the heads and feed-forward units
    per group (`unit_groups`) of a structurally pruned model, written by `compress` (null: all)."""

    KIND = "causal"

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        hidden_size: int = 256,
        layers: int = 4,
        attention_heads: int = 4,
        ffn_size: int = 1024,
        dropout: float = 0.1,
        max_positions: int = 256,
        attn_layer: int = -1,
        path: str | None = None,
        num_topics: int = 0,
        rating_head: bool = False,
        conversation_bag: bool = False,
        kept_units: list[int] | None = None,
    ) -> None:
        if path:
            net = load_pretrained(path, self.KIND)
        else:
            from transformers import GPT2Config, GPT2LMHeadModel

            check_heads(hidden_size, attention_heads)
            config = GPT2Config(
                vocab_size=vocab_size,
                n_embd=hidden_size,
                n_layer=layers,
                n_head=attention_heads,
                n_inner=ffn_size,
                n_positions=max_positions,
                resid_pdrop=dropout,
                embd_pdrop=dropout,
                attn_pdrop=dropout,
                bos_token_id=None,
                eos_token_id=None,
                attn_implementation=EAGER,
            )
            net = GPT2LMHeadModel(config)
        super().__init__(
            net,
            vocab_size,
            pad_id,
            attn_layer,
            num_topics,
            rating_head,
            conversation_bag,
            kept_units,
        )
        self.max_positions = int(net.config.n_positions)

    def unit_groups(self) -> list[UnitGroup]:
        """Per layer: the attention heads (fused query/key/value `c_attn`), the MLP's units."""
        out: list[UnitGroup] = []
        for block in self.net.transformer.h:
            out.append(Heads(block.attn, "c_attn", None, None, "c_proj", block.attn.head_dim))
            out.append(FeedForward(block.mlp, "c_fc", "c_proj"))
        return out

    def stacks(self) -> dict[str, int]:
        return {"net.transformer.h.": int(self.net.config.n_layer)}

    def context_states(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """Last-layer states of the context ``[B, Ts, H]``, pads zeroed."""
        self.check_length(src.size(1))
        out = self.net.transformer(
            input_ids=src, attention_mask=src_mask.long(), position_ids=positions(src_mask)
        )
        return out.last_hidden_state * src_mask.unsqueeze(-1)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor,
        tgt_in: Tensor,
        head_src: Tensor | None = None,
        head_src_mask: Tensor | None = None,
        conv: ConversationBag | None = None,
    ) -> Seq2SeqOutput:
        """Teacher-forced pass over context + ``tgt_in [B, Tt]`` (BOS first, right-padded:
        trailing pads change no earlier position)."""
        s, t = src.size(1), tgt_in.size(1)
        self.check_length(s + t)
        mask = torch.cat([src_mask.long(), torch.ones_like(tgt_in)], 1)
        out = self.net(
            input_ids=torch.cat([src, tgt_in], 1),
            attention_mask=mask,
            position_ids=positions(mask),
            output_attentions=True,
            output_hidden_states=True,
            use_cache=False,
        )
        keep = src_mask.unsqueeze(-1)
        layers = [h[:, :s] * keep for h in out.hidden_states[1:]]
        keys = src_mask.unsqueeze(1)
        layer_attn = []
        for a in out.attentions:
            on_context = a.mean(1)[:, s:, :s] * keys
            layer_attn.append(on_context / on_context.sum(-1, keepdim=True).clamp(min=1e-9))
        topic, rating = self.task_outputs(src, layers[-1], head_src, head_src_mask, src_mask, conv)
        return Seq2SeqOutput(
            out.logits[:, s:],
            layers[-1],
            layer_attn[self.attn_layer],
            out.hidden_states[-1][:, s:],
            topic,
            rating,
            layer_states=layers,
            layer_attn=layer_attn,
        )

    # ---- the decoding protocol (distillab.decoding.Decodable) -------------------------------
    def encode(self, src: Tensor, src_mask: Tensor) -> CausalState:
        """Run the context once into the key/value cache."""
        from transformers import DynamicCache

        self.check_length(src.size(1))
        mask = src_mask.long()
        cache = DynamicCache()
        self.net.transformer(
            input_ids=src,
            attention_mask=mask,
            position_ids=positions(mask),
            use_cache=True,
            **{self.cache_kw: cache},
        )
        return CausalState(cache, mask, mask.sum(1))

    def step(self, prev: Tensor, state: CausalState) -> tuple[Tensor, CausalState]:
        """One token per row, reading (and extending) the key/value cache."""
        self.check_length(state.mask.size(1) + 1)
        mask = torch.cat([state.mask, state.mask.new_ones(state.mask.size(0), 1)], 1)
        out = self.net(
            input_ids=prev.unsqueeze(1),
            attention_mask=mask,
            position_ids=state.position.unsqueeze(1),
            use_cache=True,
            **{self.cache_kw: state.cache},
        )
        return float_logits(out.logits[:, -1]), CausalState(state.cache, mask, state.position + 1)

    def reorder(self, state: CausalState, index: Tensor) -> CausalState:
        """Rows ``index`` of the state: every cached key/value, the mask, the positions."""
        state.cache.reorder_cache(index)
        return CausalState(
            state.cache, state.mask.index_select(0, index), state.position.index_select(0, index)
        )


__all__ = ["CausalState", "HFCausal"]
