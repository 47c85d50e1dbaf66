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
from typing import Any

import torch
from torch import Tensor

from distillab.data.batch import Batch
from distillab.data.tokenizer import pretrained_tokenizer, special_ids, vocab_hash
from distillab.decoding import Greedy, Strategy
from distillab.errors import ConfigError
from distillab.teachers.base import Teacher
from distillab.teachers.outputs import LogitsOutput
from distillab.utils.io import file_sha256, fingerprint

NEVER = -1.0e4  # the logit of an id the teacher does not have (softmax: exactly 0)
WEIGHTS = ("*.safetensors", "*.bin")


def model_kind(path: str, key: str = "teacher.path") -> str:
    """`seq2seq` or `causal`; a clear `ConfigError` for anything that is not a local model
    directory of one of those kinds (checked at start by `validate`)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    p = Path(path)
    if not p.is_dir():
        raise ConfigError(
            f"{key}={path}: no such directory (hub names are not downloaded; save the model "
            "and its tokenizer with save_pretrained and give that directory)"
        )
    if not (p / "config.json").is_file():
        raise ConfigError(f"{key}={path}: not a transformers model directory (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a bad config
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{key}={path}: cannot read its config.json ({reason})") from None
    if not any(any(p.glob(w)) for w in WEIGHTS):
        raise ConfigError(f"{key}={path}: no weights there (*.safetensors or *.bin)")
    if config.model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return "seq2seq"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise ConfigError(
        f"{key}={path}: a {config.model_type!r} model is neither a seq2seq nor a causal "
        "language model (AutoModelForSeq2SeqLM / AutoModelForCausalLM)"
    )


def left_align(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Index `[B, S]` that moves each row's real tokens (a prefix) to the end (left padding),
    and its inverse."""
    s = x.size(1)
    shift = (s - mask.sum(1)).unsqueeze(1)
    ar = torch.arange(s, device=x.device).unsqueeze(0)
    return (ar - shift) % s, (ar + shift) % s


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
        logits, enc_states, attn = run(batch.src, batch.src_mask, batch.tgt_in)
        return LogitsOutput(enc_states, attn, None, None, [logits], [1.0])

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
        out = self.network(
            input_ids=self._in(src),
            attention_mask=src_mask.long(),
            decoder_input_ids=self._decoder_in(tgt_in),
            output_attentions=True,
        )
        enc = out.encoder_last_hidden_state * src_mask.unsqueeze(-1)
        attn = out.cross_attentions[-1].mean(1)  # last layer, heads averaged: [B, T, S]
        return self._out(out.logits), enc, attn

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
        # response rows' attention on the context, back in the right-padded source order
        attn = out.attentions[-1].mean(1)[:, s : s + t, :s]
        attn = attn.gather(2, back.unsqueeze(1).expand(b, t, s)) * src_mask.unsqueeze(1)
        attn = attn / attn.sum(-1, keepdim=True).clamp(min=1e-9)
        hidden = out.hidden_states[-1][:, :s]
        enc = hidden.gather(1, back.unsqueeze(-1).expand(*back.shape, hidden.size(-1)))
        return self._out(out.logits[:, s : s + t]), enc * src_mask.unsqueeze(-1), attn

    # ---- the decoding protocol (distillab.decoding.Decodable) -------------------------------
    # No key/value cache: each step reruns the decoder on the prefix (O(T^2) per response,
    # which is fine at dialogue lengths and keeps `reorder` a plain row selection).
    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Any]:
        prefix = src.new_empty(src.size(0), 0)
        if self.kind == "seq2seq":
            enc = self.network.get_encoder()(
                input_ids=self._in(src), attention_mask=src_mask.long()
            ).last_hidden_state
            return {"enc": enc, "mask": src_mask, "prefix": prefix}
        ids, mask, _ = self._causal_inputs(src, src_mask, prefix, prefix.bool())
        return {"ctx": ids, "mask": mask.bool(), "prefix": prefix}

    def step(self, prev_tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        prefix = torch.cat([state["prefix"], prev_tokens.unsqueeze(1)], 1)
        if self.kind == "seq2seq":
            out = self.network(
                encoder_outputs=(state["enc"],),
                attention_mask=state["mask"].long(),
                decoder_input_ids=self._decoder_in(prefix),
            )
        else:
            ids = torch.cat([state["ctx"], self._in(prefix)], 1)
            mask = torch.cat([state["mask"], torch.ones_like(prefix, dtype=torch.bool)], 1)
            mask = mask.long()
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            out = self.network(input_ids=ids, attention_mask=mask, position_ids=positions)
        return self._out(out.logits[:, -1]), {**state, "prefix": prefix}

    def reorder(self, state: dict[str, Any], index: Tensor) -> dict[str, Any]:
        return {k: v.index_select(0, index) for k, v in state.items()}

    # ---- validation hook (distillab.validate calls it at start, before any work) -----------
    @staticmethod
    def check_config(node: dict, key: str = "teacher") -> None:
        path = node.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{key}.path is required: a local transformers model directory")
        model_kind(path, f"{key}.path")
        pretrained_tokenizer(path, f"{key}.path")
