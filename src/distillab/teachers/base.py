"""The teacher interface: what the distillation objective and the jobs need from a teacher."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from distillab.data.batch import Batch
from distillab.decoding import Strategy
from distillab.errors import ConfigError
from distillab.models import Seq2Seq
from distillab.teachers.outputs import TeacherOutput


class Teacher(ABC):
    """A frozen model (never trained, never in the student's optimiser or checkpoint).

    Implementations say who they are (`identity`: a content hash that keys every cache built
    from them; `source`: where they come from, for logs and reports), which tokenizer they
    read (`vocab_hash`), and score a collated batch. Callers ask the interface, never the
    class: `model` is None for a teacher without distillab weights.
    """

    weight: float = 1.0

    @property
    @abstractmethod
    def identity(self) -> str:
        """Changes whenever the teacher's outputs could change (e.g. its checkpoint's sha256)."""

    @property
    @abstractmethod
    def vocab_hash(self) -> str:
        """Fingerprint of the tokenizer the teacher was trained with."""

    @property
    def source(self) -> str:
        """Where the teacher comes from, for logs and reports (a checkpoint file, a model
        directory); by default its class name."""
        return type(self).__name__

    @property
    def checkpoint(self) -> str | None:
        """The distillab checkpoint it serves (evaluated like a student); None for others."""
        return None

    @property
    def model(self) -> Seq2Seq | None:
        """The teacher's distillab network, where it has one (`student.init_from_teacher`
        copies from it; a cached teacher runs its task heads): None otherwise."""
        return None

    @property
    def hidden_size(self) -> int | None:
        """Width of `enc_states` in its outputs (hidden-state transfer sizes its projection)."""
        return None

    @abstractmethod
    def outputs(self, batch: Batch) -> TeacherOutput:
        """The teacher's outputs on a collated batch (teacher-forced on `tgt_in`), no grad."""

    def generate(self, src: Tensor, src_mask: Tensor, strategy: Strategy | None = None) -> Tensor:
        """Decoded responses (sequence-level KD); not every teacher can decode."""
        raise ConfigError(f"{type(self).__name__} cannot decode (sequence-level KD needs it)")

    def to(self, device: torch.device | str) -> Teacher:
        return self


def check_vocab(teacher: Teacher, vocab_hash: str, data_fingerprint: str, name: str) -> None:
    """Logit KD pairs token ids one to one: a teacher with another tokenizer is refused."""
    if teacher.vocab_hash != vocab_hash:
        raise ConfigError(
            f"{name} was trained with a different tokenizer (vocab {teacher.vocab_hash or '?'}) "
            f"than the student's data (vocab {vocab_hash}, data {data_fingerprint}); train the "
            "teacher on the same data settings or use teacher.ckpt=auto"
        )
