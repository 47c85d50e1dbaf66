"""A distillab Lightning checkpoint (a teacher trained by `distillab-train`) as a teacher."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from distillab.data.batch import Batch
from distillab.decoding import Strategy
from distillab.errors import ConfigError
from distillab.models import Seq2Seq
from distillab.teachers.base import Teacher
from distillab.teachers.outputs import LogitsOutput
from distillab.utils.io import file_sha256


class CheckpointTeacher(Teacher):
    """`ckpt` is a checkpoint path (`teacher.ckpt=auto` is resolved to one by the registry in
    `distillab.jobs.teacher` before this class is built)."""

    def __init__(self, ckpt: str, weight: float = 1.0) -> None:
        from distillab.modules.seq2seq import Seq2SeqModule  # modules import teachers

        if not Path(ckpt).is_file():
            raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file")
        self.ckpt, self.weight = str(ckpt), float(weight)
        self.module = Seq2SeqModule.load_from_checkpoint(self.ckpt, map_location="cpu")
        self.module.eval()
        self.module.requires_grad_(False)
        self._identity: str | None = None

    @property
    def model(self) -> Seq2Seq:
        return self.module.model

    @property
    def source(self) -> str:
        return self.ckpt

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = file_sha256(self.ckpt)
        return self._identity

    @property
    def vocab_hash(self) -> str:
        return str(self.module.hparams.get("vocab_hash", ""))

    @property
    def hidden_size(self) -> int:
        return int(self.model.hidden_size)

    @torch.no_grad()
    def outputs(self, batch: Batch) -> LogitsOutput:
        out = self.module(batch)
        return LogitsOutput(
            out.enc_states, out.attn, out.topic_logits, out.rating, [out.logits], [1.0]
        )

    def generate(self, src: Tensor, src_mask: Tensor, strategy: Strategy | None = None) -> Tensor:
        return self.module.generate(src, src_mask, strategy)

    def to(self, device) -> CheckpointTeacher:
        self.module.to(device)
        return self
