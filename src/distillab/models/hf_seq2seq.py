"""`model=hf_seq2seq`: a BART-style transformer encoder-decoder (`transformers`' BART).

The dialogue context is the encoder's input, the response is teacher-forced on the decoder
(`tgt_in` starts with the run's BOS, which is also the decoder's start token). Decoding keeps
the decoder's key/value cache (self-attention keys and values of the tokens so far, the
cross-attention's of the encoder states once), so a reply costs one decoder step per token.
"""

from __future__ import annotations

from typing import Any, NamedTuple

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


class HFDecoderState(NamedTuple):
    """What the decoding strategies hand back to `step`/`reorder`; the cache is updated in
    place by each step (the strategies use a state once)."""

    enc: Tensor  # [N, Ts, H] encoder states
    mask: Tensor  # [N, Ts] long, the source's attention mask
    cache: Any  # transformers' EncoderDecoderCache


class HFSeq2Seq(HFModel):
    """BART with the run's vocabulary. Size keys: `hidden_size` (d_model), `enc_layers`,
    `dec_layers`, `attention_heads`, `ffn_size`; `max_positions` (learned positions: source
    and target lengths must fit), `dropout`. `attn_layer`: the decoder layer whose
    cross-attention (heads averaged) is `Seq2SeqOutput.attn`. `path`: a local
    `save_pretrained` directory to start from instead (its config decides the sizes). `kept_units`: the heads and feed-forward units
    per group (`unit_groups`) of a structurally pruned model, written by `compress` (null: all)."""

    KIND = "seq2seq"

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        hidden_size: int = 256,
        enc_layers: int = 2,
        dec_layers: int = 2,
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
            from transformers import BartConfig, BartForConditionalGeneration

            check_heads(hidden_size, attention_heads)
            config = BartConfig(
                vocab_size=vocab_size,
                d_model=hidden_size,
                encoder_layers=enc_layers,
                decoder_layers=dec_layers,
                encoder_attention_heads=attention_heads,
                decoder_attention_heads=attention_heads,
                encoder_ffn_dim=ffn_size,
                decoder_ffn_dim=ffn_size,
                dropout=dropout,
                attention_dropout=dropout,
                activation_dropout=0.0,
                max_position_embeddings=max_positions,
                pad_token_id=pad_id,
                bos_token_id=None,
                eos_token_id=None,
                decoder_start_token_id=None,
                forced_eos_token_id=None,
                attn_implementation=EAGER,
            )
            net = BartForConditionalGeneration(config)
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

    def unit_groups(self) -> list[UnitGroup]:
        """Per encoder layer: self-attention heads, feed-forward units; per decoder layer:
        self-attention heads, cross-attention heads, feed-forward units."""
        out: list[UnitGroup] = []
        for stack, attns in (
            ("encoder", ("self_attn",)),
            ("decoder", ("self_attn", "encoder_attn")),
        ):
            for layer in getattr(self.net.model, stack).layers:
                for name in attns:
                    attn = getattr(layer, name)
                    out.append(Heads(attn, "q_proj", "k_proj", "v_proj", "out_proj", attn.head_dim))
                out.append(FeedForward(layer, "fc1", "fc2"))
        return out

    def stacks(self) -> dict[str, int]:
        c = self.net.config
        return {
            "net.model.encoder.layers.": int(c.encoder_layers),
            "net.model.decoder.layers.": int(c.decoder_layers),
        }

    def context_states(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """Encoder states ``[B, Ts, H]``, pads zeroed."""
        self.check_length(src.size(1))
        enc = self.net.get_encoder()(input_ids=src, attention_mask=src_mask.long())
        return enc.last_hidden_state * src_mask.unsqueeze(-1)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor,
        tgt_in: Tensor,
        head_src: Tensor | None = None,
        head_src_mask: Tensor | None = None,
        conv: ConversationBag | None = None,
    ) -> Seq2SeqOutput:
        """Teacher-forced pass: ``tgt_in [B, Tt]`` starts with BOS (right-padded; the decoder
        is causal, so padding after a response changes none of its positions)."""
        self.check_length(max(src.size(1), tgt_in.size(1)))
        out = self.net(
            input_ids=src,
            attention_mask=src_mask.long(),
            decoder_input_ids=tgt_in,
            output_attentions=True,
            output_hidden_states=True,
            use_cache=False,
        )
        keep = src_mask.unsqueeze(-1)
        layers = [h * keep for h in out.encoder_hidden_states[1:]]
        layer_attn = [a.mean(1) for a in out.cross_attentions]
        topic, rating = self.task_outputs(src, layers[-1], head_src, head_src_mask, src_mask, conv)
        return Seq2SeqOutput(
            out.logits,
            layers[-1],
            layer_attn[self.attn_layer],
            out.decoder_hidden_states[-1],
            topic,
            rating,
            layer_states=layers,
            layer_attn=layer_attn,
        )

    # ---- the decoding protocol (distillab.decoding.Decodable) -------------------------------
    def encode(self, src: Tensor, src_mask: Tensor) -> HFDecoderState:
        from transformers import DynamicCache, EncoderDecoderCache

        mask = src_mask.long()
        enc = self.net.get_encoder()(input_ids=src, attention_mask=mask).last_hidden_state
        return HFDecoderState(enc, mask, EncoderDecoderCache(DynamicCache(), DynamicCache()))

    def step(self, prev: Tensor, state: HFDecoderState) -> tuple[Tensor, HFDecoderState]:
        """One decoder token per row, reading (and extending) the key/value cache."""
        self.check_length(state.cache.get_seq_length() + 1)
        out = self.net(
            encoder_outputs=(state.enc,),
            attention_mask=state.mask,
            decoder_input_ids=prev.unsqueeze(1),
            use_cache=True,
            **{self.cache_kw: state.cache},
        )
        return float_logits(out.logits[:, -1]), state

    def reorder(self, state: HFDecoderState, index: Tensor) -> HFDecoderState:
        """Rows ``index`` of the state: encoder states, mask and every cached key/value."""
        state.cache.reorder_cache(index)
        return HFDecoderState(
            state.enc.index_select(0, index), state.mask.index_select(0, index), state.cache
        )


__all__ = ["HFDecoderState", "HFSeq2Seq"]
