"""Sequence-level KD decodes: made with the configured strategy, cached by its whole config."""

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from distillab.compose.modules import module_kwargs
from distillab.compose.teachers import teacher_decodes
from distillab.decoding import Beam, Greedy
from distillab.errors import ConfigError
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.teachers import Teacher
from tests.conftest import TINY, compose_cfg, started


class ModuleTeacher(Teacher):
    """An in-memory module as a teacher (seqKD only decodes)."""

    def __init__(self, module: Seq2SeqModule) -> None:
        self.module = module

    identity = "untrained-test-teacher"
    vocab_hash = ""

    def outputs(self, batch):
        raise NotImplementedError

    def generate(self, src, src_mask, strategy=None):
        return self.module.generate(src, src_mask, strategy)


GREEDY = {"_target_": "distillab.decoding.Greedy"}
BEAM = {"_target_": "distillab.decoding.Beam", "beam_size": 3, "length_penalty": 1.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("seqkd")
    cfg = compose_cfg(["experiment=student", "distill=seqkd", *TINY], root)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(root / "cache")
        cfg.data.max_train_examples = 40
    dm = started(cfg).data
    torch.manual_seed(0)
    teacher = Seq2SeqModule(
        **module_kwargs(cfg, dm, (0, False))
    ).eval()  # untrained: decodes are varied
    return cfg, dm, ModuleTeacher(teacher)


def decodes(path) -> list[list[int]]:
    tokens, offsets = np.load(path / "tokens.npy"), np.load(path / "offsets.npy")
    return [tokens[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def expected(dm, teacher, strategy) -> list[list[int]]:
    """What `strategy` decodes for each training row (up to EOS, pads dropped)."""
    out = {}
    for batch in dm.plain_loader("train"):
        hyps = teacher.generate(batch.src, batch.src_mask, strategy)
        for row, hyp in zip(batch.index.tolist(), hyps.tolist(), strict=True):
            hyp = hyp[: hyp.index(dm.eos_id)] if dm.eos_id in hyp else hyp
            out[row] = [t for t in hyp if t != dm.pad_id]
    return [out.get(r, []) for r in range(len(dm.splits["train"].examples))]


def test_decodes_use_the_configured_strategy_and_its_cache_key(setup) -> None:
    cfg, dm, teacher = setup
    cfg.distill.seqkd.decoding = GREEDY
    greedy_path = teacher_decodes(cfg, dm, teacher)
    assert decodes(greedy_path) == expected(dm, teacher, Greedy())
    stamp = (greedy_path / "artefact.json").stat().st_mtime_ns

    cfg.distill.seqkd.decoding = BEAM
    beam_path = teacher_decodes(cfg, dm, teacher)
    assert beam_path != greedy_path  # the key covers the decoding config
    want = expected(dm, teacher, Beam(3))
    assert decodes(beam_path) == want and want != decodes(greedy_path)

    cfg.distill.seqkd.decoding = {**BEAM, "length_penalty": 0.5}  # any argument counts
    assert teacher_decodes(cfg, dm, teacher) not in (greedy_path, beam_path)

    cfg.distill.seqkd.decoding = GREEDY  # the same config finds its decodes, no new decode
    assert teacher_decodes(cfg, dm, teacher) == greedy_path
    assert (greedy_path / "artefact.json").stat().st_mtime_ns == stamp


def test_bad_teacher_decoding_names_its_key(setup) -> None:
    cfg, dm, teacher = setup
    cfg.distill.seqkd.decoding = {"_target_": "distillab.decoding.Sample", "top_p": 1.5}
    with pytest.raises(ConfigError, match=r"distill\.seqkd\.decoding\.top_p=1\.5 is out of"):
        teacher_decodes(cfg, dm, teacher)
