"""Seq2SeqModule: the `decoding` strategy it is built with drives generate()."""

import pytest
import torch
from omegaconf import OmegaConf

from distillab.decoding import Beam, Greedy, Sample
from distillab.errors import ConfigError
from distillab.modules.seq2seq import Seq2SeqModule

MODEL = {"_target_": "distillab.models.Seq2Seq", "emb_dim": 8, "hidden_size": 12}
IDS = dict(bos_id=1, eos_id=2, max_len=6)


def make_module(**kw) -> Seq2SeqModule:
    torch.manual_seed(0)
    ids = dict(vocab_size=30, pad_id=0, bos_id=1, eos_id=2, max_decode_len=6)
    return Seq2SeqModule(model=MODEL, **ids, **kw).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(3, 30, (8, 5), generator=torch.Generator().manual_seed(0))
    return src, torch.ones_like(src, dtype=torch.bool)


def test_default_decoding_is_greedy() -> None:
    module = make_module()
    assert module.decoding == Greedy()
    assert module.hparams.decoding == {"_target_": "distillab.decoding.Greedy"}
    src, mask = batch()
    assert torch.equal(module.generate(src, mask), Greedy()(module.model, src, mask, **IDS))


def test_decoding_config_drives_generate() -> None:
    spec = {"_target_": "distillab.decoding.Sample", "temperature": 2.0, "seed": 3}
    module = make_module(decoding=OmegaConf.create(spec))  # a DictConfig is stored as a dict
    assert module.decoding == Sample(temperature=2.0, seed=3)
    assert module.hparams.decoding == spec and isinstance(module.hparams.decoding, dict)
    src, mask = batch()
    sampled = module.generate(src, mask)
    assert torch.equal(sampled, Sample(2.0, seed=3)(module.model, src, mask, **IDS))
    greedy = module.generate(src, mask, Greedy())  # an explicit strategy wins
    assert torch.equal(greedy, Greedy()(module.model, src, mask, **IDS))
    assert not torch.equal(sampled, greedy)
    beam = module.generate(src, mask, Beam(3))
    assert torch.equal(beam, Beam(3)(module.model, src, mask, **IDS))


def test_bad_decoding_fails_at_construction_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"decoding\.beam_size=0 is out of range"):
        make_module(decoding={"_target_": "distillab.decoding.Beam", "beam_size": 0})
    with pytest.raises(TypeError, match="beam_size"):
        make_module(beam_size=4)  # the old argument is gone: decoding=... replaces it
