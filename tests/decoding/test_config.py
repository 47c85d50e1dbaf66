"""The `decoding` config group and where it is wired: the trained module and seqKD's teacher."""

from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from distillab.compose.modules import module_kwargs
from distillab.decoding import Beam, Greedy, Sample, build_strategy
from tests.conftest import compose_cfg


@pytest.mark.parametrize(
    ("option", "want"),
    [
        (None, Greedy()),
        ("greedy", Greedy()),
        ("beam", Beam(beam_size=4, length_penalty=1.0)),
        ("sample", Sample(temperature=1.0, top_p=1.0, seed=None)),
    ],
)
def test_decoding_group_options(tmp_path, option, want) -> None:
    overrides = ["experiment=student"] + ([f"decoding={option}"] if option else [])
    cfg = compose_cfg(overrides, tmp_path)
    assert build_strategy(OmegaConf.to_container(cfg.decoding, resolve=True)) == want
    assert "beam_size" not in cfg.module


def test_module_kwargs_carry_the_resolved_decoding(tmp_path) -> None:
    cfg = compose_cfg(["experiment=student", "decoding=beam", "decoding.beam_size=2"], tmp_path)
    dm = SimpleNamespace(
        tokenizer=range(50),
        pad_id=0,
        bos_id=1,
        eos_id=2,
        topics=[],
        fingerprint="f",
        vocab_hash="v",
    )
    kwargs = module_kwargs(cfg, dm, (0, False))
    assert kwargs["decoding"] == {
        "_target_": "distillab.decoding.Beam",
        "beam_size": 2,
        "length_penalty": 1.0,
    }
    assert "beam_size" not in kwargs


@pytest.mark.parametrize("distill", ["logits", "hidden", "attention", "seqkd", "combined"])
def test_seqkd_teacher_decoding_defaults_to_greedy(tmp_path, distill) -> None:
    cfg = compose_cfg(["experiment=distill", f"distill={distill}"], tmp_path)
    seq = OmegaConf.to_container(cfg.distill.seqkd, resolve=True)
    assert seq["decoding"] == {"_target_": "distillab.decoding.Greedy"}
    assert "beam_size" not in seq


def test_seqkd_teacher_decoding_is_a_group_option_apart_from_the_students(tmp_path) -> None:
    overrides = [
        "experiment=distill",
        "distill=seqkd",
        "decoding@distill.seqkd.decoding=beam",
        "distill.seqkd.decoding.beam_size=8",
        "decoding=sample",
        "decoding.top_p=0.9",
    ]
    cfg = compose_cfg(overrides, tmp_path)
    teacher = build_strategy(OmegaConf.to_container(cfg.distill.seqkd.decoding, resolve=True))
    assert teacher == Beam(beam_size=8, length_penalty=1.0)
    assert build_strategy(OmegaConf.to_container(cfg.decoding)) == Sample(top_p=0.9)
