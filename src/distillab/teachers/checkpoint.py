"""A distillab Lightning checkpoint (a teacher trained by `distillab-train`) as a teacher.

The network and the hyperparameters it needs (token ids, decoding) come from the checkpoint
through `distillab.checkpoint`; no LightningModule is built (teachers sit below modules)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from distillab.checkpoint import hyperparameters, model_from, read_checkpoint
from distillab.data.batch import Batch
from distillab.decoding import Strategy, build_strategy
from distillab.errors import ConfigError
from distillab.models import Seq2Seq
from distillab.teachers.base import Teacher
from distillab.teachers.outputs import LogitsOutput
from distillab.utils.io import file_sha256

GREEDY = {"_target_": "distillab.decoding.Greedy"}  # a module's default decoding


class CheckpointTeacher(Teacher):
    """`ckpt` is a checkpoint path (`teacher.ckpt=auto` is resolved to one by the registry in
    `distillab.compose.teachers` before this class is built)."""

    def __init__(self, ckpt: str, weight: float = 1.0) -> None:
        if not Path(ckpt).is_file():
            raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file")
        self.ckpt, self.weight = str(ckpt), float(weight)
        state = read_checkpoint(self.ckpt)
        self.hparams = hyperparameters(state)
        self.network = model_from(state, self.ckpt)
        self.network.requires_grad_(False)
        self.decoding = build_strategy(self.hparams.get("decoding") or GREEDY)
        self._identity: str | None = None

    @property
    def model(self) -> Seq2Seq:
        return self.network

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = file_sha256(self.ckpt)
        return self._identity

    @property
    def source(self) -> str:
        return self.ckpt

    @property
    def checkpoint(self) -> str:
        return self.ckpt

    @property
    def vocab_hash(self) -> str:
        return str(self.hparams.get("vocab_hash", ""))

    @property
    def hidden_size(self) -> int:
        return int(self.model.hidden_size)

    @torch.no_grad()
    def outputs(self, batch: Batch) -> LogitsOutput:
        out = self.network.forward_batch(batch)
        return LogitsOutput(
            enc_states=out.enc_states,
            attn=out.attn,
            topic_logits=out.topic_logits,
            rating=out.rating,
            layer_states=out.layer_states,
            layer_attn=out.layer_attn,
            logits=[out.logits],
            weights=[1.0],
        )

    def generate(self, src: Tensor, src_mask: Tensor, strategy: Strategy | None = None) -> Tensor:
        """Decode with `strategy` (default: the checkpoint's `decoding`) up to its
        `max_decode_len`, as the module that trained it would."""
        hp = self.hparams
        return (strategy or self.decoding)(
            self.model,
            src,
            src_mask,
            bos_id=hp["bos_id"],
            eos_id=hp["eos_id"],
            max_len=hp["max_decode_len"],
        )

    def to(self, device) -> CheckpointTeacher:
        self.model.to(device)
        return self
