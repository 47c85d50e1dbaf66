"""A teacher that reads another tokenizer is refused when it is built, before any student of
the job trains (the quickstart trains its scratch student before it distils)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from distillab.compose.teachers import build_teacher
from distillab.errors import ConfigError
from distillab.teachers import Teacher


class VocabTeacher(Teacher):
    def __init__(self, vocab: str) -> None:
        self.vocab = vocab

    @property
    def identity(self) -> str:
        return "f" * 64

    @property
    def vocab_hash(self) -> str:
        return self.vocab

    def outputs(self, batch):  # pragma: no cover - never scored here
        raise AssertionError


DM = SimpleNamespace(vocab_hash="aaaa", fingerprint="data1234")


def spec(vocab: str):
    return OmegaConf.create({"_target_": f"{__name__}.VocabTeacher", "vocab": vocab})


def test_teacher_with_the_datas_tokenizer_is_built():
    assert build_teacher(spec("aaaa"), DM).vocab_hash == "aaaa"


def test_teacher_with_another_tokenizer_is_refused_when_built():
    with pytest.raises(ConfigError, match=r"different tokenizer \(vocab bbbb\).*vocab aaaa"):
        build_teacher(spec("bbbb"), DM)
