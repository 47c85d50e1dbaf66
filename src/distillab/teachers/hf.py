"""A local Hugging Face `transformers` model as the teacher (`teacher=hf teacher.path=DIR`).

An encoder-decoder (`AutoModelForSeq2SeqLM`: the dialogue context is the source, the response
is teacher-forced on the decoder) or a causal LM (`AutoModelForCausalLM`: context and response
concatenated, logits and attention taken on the response positions only). The student's data
uses the same tokenizer (`conf/teacher/hf.yaml` sets `data.tokenizer=pretrained`), prepared by
`data.tokenizer.pretrained_tokenizer`: the teacher's ids unchanged, plus (at the end) the ids
the pipeline needs and the teacher lacks. Those added ids are fed to the teacher as its EOS
(speaker markers become the turn separator of DialoGPT-style models) and get zero probability
in its output, so logit KD pairs ids one to one over the student's vocabulary.

Offline only: `path` must be a saved directory (`save_pretrained` of model and tokenizer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from distillab.data.batch import Batch
from distillab.data.tokenizer import pretrained_tokenizer, special_ids, vocab_hash
from distillab.decoding import Greedy, Strategy
from distillab.errors import ConfigError
from distillab.models.transformer import cache_keyword, model_kind
from distillab.teachers.base import Teacher
from distillab.teachers.outputs import LogitsOutput
from distillab.utils.io import file_sha256, fingerprint

NEVER = -1.0e4  # the logit of an id the teacher does not have (softmax: exactly 0)


def left_align(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Index `[B, S]` that moves each row's real tokens (a prefix) to the end (left padding),
    and its inverse."""
    s = x.size(1)
    shift = (s - mask.sum(1)).unsqueeze(1)
    ar = torch.arange(s, device=x.device).unsqueeze(0)
    return (ar - shift) % s, (ar + shift) % s


class HFState(NamedTuple):
    """A decoding state: the key/value cache, the attention mask of what it holds (causal: the
    context and the tokens so far; seq2seq: the source), each row's next position (causal),
    and the encoder states (seq2seq)."""

    cache: Any  # transformers' Cache
    mask: Tensor  # [N, S] long
    position: Tensor  # [N] long
    enc: Tensor | None


class HFTeacher(Teacher):
    """`path`: a local model directory with its tokenizer; `max_len`: decode length limit
    (sequence-level KD)."""

    def __init__(self, path: str, weight: float = 1.0, max_len: int = 32) -> None:
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars: noise in the run's log
        self.kind = model_kind(path)
        self.path, self.weight, self.max_len = str(path), float(weight), int(max_len)
        cls = AutoModelForSeq2SeqLM if self.kind == "seq2seq" else AutoModelForCausalLM
        # eager attention: the only implementation that returns attention maps
        self.network = cls.from_pretrained(path, local_files_only=True, attn_implementation="eager")
        self.network.eval().requires_grad_(False)
        self.tokenizer = pretrained_tokenizer(path, "teacher.path")
        base = len(AutoTokenizer.from_pretrained(path, local_files_only=True))
        n_in = self.network.get_input_embeddings().num_embeddings
        self.n_known = min(base, n_in)  # ids >= this are the pipeline's additions
        self.vocab_size = len(self.tokenizer)  # the student's width (Decodable)
        ids = special_ids(self.tokenizer)
        self.pad_id, self.bos_id, self.eos_id = ids[0], ids[2], ids[3]
        config = self.network.config
        self.start_id = getattr(config, "decoder_start_token_id", None)
        if self.start_id is None:
            self.start_id = self.tokenizer.eos_token_id
        self._hidden = int(config.hidden_size)
        self._identity: str | None = None

    # ---- the Teacher interface ------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.path

    @property
    def identity(self) -> str:
        if self._identity is None:
            files = sorted(f for f in Path(self.path).iterdir() if f.is_file())
            self._identity = fingerprint("hf-teacher-v1", [(f.name, file_sha256(f)) for f in files])
        return self._identity

    @property
    def vocab_hash(self) -> str:
        return vocab_hash(self.tokenizer)

    @property
    def hidden_size(self) -> int:
        return self._hidden

    @torch.no_grad()
    def outputs(self, batch: Batch) -> LogitsOutput:
        run = self._seq2seq if self.kind == "seq2seq" else self._causal
        logits, layers, layer_attn = run(batch.src, batch.src_mask, batch.tgt_in)
        return LogitsOutput(
            enc_states=layers[-1],
            attn=layer_attn[-1],
            layer_states=layers,
            layer_attn=layer_attn,
            logits=[logits],
            weights=[1.0],
        )

    def generate(self, src: Tensor, src_mask: Tensor, strategy: Strategy | None = None) -> Tensor:
        """Decode through a distillab strategy (greedy, beam, sample) like any teacher."""
        return (strategy or Greedy())(
            self, src, src_mask, bos_id=self.bos_id, eos_id=self.eos_id, max_len=self.max_len
        )

    def to(self, device) -> HFTeacher:
        self.network.to(device)
        return self

    # ---- id mapping between the student's vocabulary and the teacher's ----------------------
    def _in(self, ids: Tensor) -> Tensor:
        """Pipeline-only ids (speaker markers, an added pad/unk) -> the teacher's EOS."""
        return ids.masked_fill(ids >= self.n_known, self.tokenizer.eos_token_id)

    def _out(self, logits: Tensor) -> Tensor:
        """`[..., V_teacher]` -> `[..., V_student]`; ids the teacher lacks get `NEVER`."""
        logits = logits[..., : self.n_known].float()
        missing = self.vocab_size - logits.size(-1)
        if missing <= 0:
            return logits
        return torch.cat([logits, logits.new_full((*logits.shape[:-1], missing), NEVER)], -1)

    def _decoder_in(self, tgt_in: Tensor) -> Tensor:
        dec = self._in(tgt_in)
        dec[:, 0] = self.start_id  # the teacher's own decoder start, not the student's BOS
        return dec

    def _seq2seq(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor):
        """-> logits, every encoder layer's states [B, S, H] (pads zeroed) and every decoder
        layer's cross-attention [B, T, S] (heads averaged), for layer-mapped transfer."""
        out = self.network(
            input_ids=self._in(src),
            attention_mask=src_mask.long(),
            decoder_input_ids=self._decoder_in(tgt_in),
            output_attentions=True,
            output_hidden_states=True,
        )
        keep = src_mask.unsqueeze(-1)
        layers = [h * keep for h in out.encoder_hidden_states[1:]]
        return self._out(out.logits), layers, [a.mean(1) for a in out.cross_attentions]

    def _causal_inputs(self, src: Tensor, src_mask: Tensor, tail: Tensor, tail_mask: Tensor):
        to_left, _ = left_align(src, src_mask)
        ids = torch.cat([self._in(src).gather(1, to_left), self._in(tail)], 1)
        mask = torch.cat([src_mask.gather(1, to_left), tail_mask], 1).long()
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return ids, mask, positions

    def _causal(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor):
        s, t = src.size(1), tgt_in.size(1)
        ids, mask, positions = self._causal_inputs(src, src_mask, tgt_in, tgt_in != self.pad_id)
        out = self.network(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            output_attentions=True,
            output_hidden_states=True,
        )
        _, back = left_align(src, src_mask)
        b = src.size(0)

        def on_context(a: Tensor) -> Tensor:
            """A layer's response rows' attention on the context (heads averaged,
            renormalised), back in the right-padded source order."""
            a = a.mean(1)[:, s : s + t, :s]
            a = a.gather(2, back.unsqueeze(1).expand(b, t, s)) * src_mask.unsqueeze(1)
            return a / a.sum(-1, keepdim=True).clamp(min=1e-9)

        def context_states(h: Tensor) -> Tensor:
            h = h[:, :s].gather(1, back.unsqueeze(-1).expand(*back.shape, h.size(-1)))
            return h * src_mask.unsqueeze(-1)

        layers = [context_states(h) for h in out.hidden_states[1:]]
        layer_attn = [on_context(a) for a in out.attentions]
        return self._out(out.logits[:, s : s + t]), layers, layer_attn

    # ---- the decoding protocol (distillab.decoding.Decodable) -------------------------------
    # With the model's key/value cache: one decoder step per token. The cache is updated in
    # place by each step (the strategies use a state once); `reorder` selects its rows.
    def encode(self, src: Tensor, src_mask: Tensor) -> HFState:
        from transformers import DynamicCache, EncoderDecoderCache

        if self.kind == "seq2seq":
            mask = src_mask.long()
            enc = self.network.get_encoder()(
                input_ids=self._in(src), attention_mask=mask
            ).last_hidden_state
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            return HFState(cache, mask, mask.new_zeros(src.size(0)), enc)
        prefix = src.new_empty(src.size(0), 0)
        ids, mask, positions = self._causal_inputs(src, src_mask, prefix, prefix.bool())
        cache = DynamicCache()
        self.network(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_keyword(self.network): cache},
        )
        return HFState(cache, mask, mask.sum(1), None)

    def step(self, prev_tokens: Tensor, state: HFState) -> tuple[Tensor, HFState]:
        cache = {cache_keyword(self.network): state.cache}
        if self.kind == "seq2seq":
            dec = self._in(prev_tokens).unsqueeze(1)
            if state.cache.get_seq_length() == 0:
                dec = dec.new_full(dec.shape, self.start_id)  # the teacher's own start
            out = self.network(
                encoder_outputs=(state.enc,),
                attention_mask=state.mask,
                decoder_input_ids=dec,
                use_cache=True,
                **cache,
            )
            return self._out(out.logits[:, -1]), state
        mask = torch.cat([state.mask, state.mask.new_ones(state.mask.size(0), 1)], 1)
        out = self.network(
            input_ids=self._in(prev_tokens).unsqueeze(1),
            attention_mask=mask,
            position_ids=state.position.unsqueeze(1),
            use_cache=True,
            **cache,
        )
        return self._out(out.logits[:, -1]), HFState(state.cache, mask, state.position + 1, None)

    def reorder(self, state: HFState, index: Tensor) -> HFState:
        state.cache.reorder_cache(index)
        enc = None if state.enc is None else state.enc.index_select(0, index)
        return HFState(
            state.cache,
            state.mask.index_select(0, index),
            state.position.index_select(0, index),
            enc,
        )

    # ---- validation hook (distillab.validate calls it at start, before any work) -----------
    @staticmethod
    def check_config(node: dict, key: str = "teacher") -> None:
        path = node.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{key}.path is required: a local transformers model directory")
        model_kind(path, f"{key}.path")
        pretrained_tokenizer(path, f"{key}.path")
