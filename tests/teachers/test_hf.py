"""Hugging Face teachers: a tiny random BART and GPT-2 saved locally, distilled into GRUs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from distillab.data.tokenizer import OTHER, SELF, pretrained_tokenizer, special_ids
from distillab.decoding import Beam
from distillab.errors import ConfigError
from distillab.losses.context import LossContext
from distillab.losses.terms import HiddenStateMSE
from distillab.teachers import HFTeacher
from distillab.teachers.hf import NEVER
from distillab.train import run_job
from distillab.validate import validate
from tests.conftest import TINY, compose_cfg, make_batch, synthetic_conversations, write_jsonl
from tests.hf_tiny import save_tiny, tiny_tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {k: save_tiny(k, root / k) for k in ("bart", "gpt2")}


def hf_overrides(path: Path, tmp_path: Path) -> list[str]:
    data = write_jsonl(tmp_path / "dialogues.jsonl", synthetic_conversations(40))
    return ["experiment=distill", "teacher=hf", f"teacher.path={path}", "data=jsonl",
            f"data.path={data}", *TINY]  # fmt: skip


# ---- the tokenizer the pipeline and the teacher share ------------------------------------
def test_pretrained_tokenizer_keeps_teacher_ids_and_appends_what_is_missing(saved):
    base = tiny_tokenizer("gpt2")
    tok = pretrained_tokenizer(str(saved["gpt2"]))
    assert {k: v for k, v in tok.get_vocab().items() if v < len(base)} == base.get_vocab()
    pad, unk, bos, eos, self_id, other_id = special_ids(tok)
    assert bos == eos == base.eos_token_id  # GPT-2's convention
    assert min(pad, unk, self_id, other_id) >= len(base)  # appended, nothing moved
    bart = pretrained_tokenizer(str(saved["bart"]))
    assert special_ids(bart)[:4] == tuple(
        bart.convert_tokens_to_ids(["<pad>", "<unk>", "<s>", "</s>"])
    )
    assert bart.convert_tokens_to_ids([SELF, OTHER]) == [len(bart) - 2, len(bart) - 1]


def test_tokenizer_without_eos_is_a_config_error(saved, tmp_path):
    bad = tmp_path / "noeos"
    shutil.copytree(saved["gpt2"], bad)
    cfg_file = bad / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["eos_token"] = None
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="no eos_token"):
        pretrained_tokenizer(str(bad))


# ---- validation at start -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "message"),
    [("facebook/bart-base", "no such directory (hub names are not downloaded"),
     ("{tmp}", "not a transformers model directory")],
)  # fmt: skip
def test_bad_teacher_path_is_one_line_at_start(path, message, tmp_path):
    cfg = compose_cfg(
        ["experiment=distill", "teacher=hf", f"teacher.path={path.format(tmp=tmp_path)}"], tmp_path
    )
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("teacher.path=")


def test_missing_teacher_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"Missing mandatory value: teacher.path"):
        validate(compose_cfg(["experiment=distill", "teacher=hf"], tmp_path))


# ---- the teacher ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bart", "gpt2"])
def test_outputs_match_step_decoding_and_never_score_added_ids(kind, saved):
    t = HFTeacher(str(saved[kind]), max_len=4)
    other = t.tokenizer.convert_tokens_to_ids(OTHER)
    src = torch.tensor([[other, 5, 6, 7], [8, 9, t.pad_id, t.pad_id]])
    tgt_in = torch.tensor([[t.bos_id, 5, 6], [t.bos_id, 7, t.pad_id]])
    batch = make_batch(2, src=src, src_mask=src != t.pad_id, tgt_in=tgt_in)
    out = t.outputs(batch)
    assert t.source == str(saved[kind]) and t.model is None  # no distillab weights
    (logits,) = out.logits
    assert logits.shape == (2, 3, len(t.tokenizer))
    assert (logits[..., t.n_known :] == NEVER).all()
    assert out.attn.shape == (2, 3, 4) and torch.allclose(out.attn.sum(-1), torch.ones(2, 3))
    assert (out.attn[1, :, 2:] == 0).all()  # no attention on source padding
    assert out.enc_states.shape == (2, 4, t.hidden_size)
    state = t.encode(src, src != t.pad_id)
    for j in range(2):  # the decoding protocol scores the same as teacher forcing
        step, state = t.step(tgt_in[:, j], state)
        assert torch.allclose(step, logits[:, j], atol=1e-5)
    hyps = t.generate(src, src != t.pad_id, Beam(beam_size=2))
    assert hyps.shape[0] == 2 and hyps.shape[1] <= t.max_len


@pytest.mark.parametrize("kind", ["bart", "gpt2"])
def test_outputs_offer_every_layer_for_layer_mapped_transfer(kind, tmp_path):
    """Each encoder (context) layer's states and each layer's attention on the source, the
    last ones being `enc_states` and `attn`; a transfer term maps a student layer to any."""
    t = HFTeacher(str(save_tiny(kind, tmp_path / kind, layers=2)), max_len=4)
    src = torch.tensor([[5, 6, 7, 8], [9, 10, t.pad_id, t.pad_id]])
    tgt_in = torch.tensor([[t.bos_id, 5, 6], [t.bos_id, 7, t.pad_id]])
    batch = make_batch(2, src=src, src_mask=src != t.pad_id, tgt_in=tgt_in)
    out = t.outputs(batch)
    assert len(out.layer_states) == len(out.layer_attn) == 2
    assert out.layer_states[-1] is out.enc_states and out.layer_attn[-1] is out.attn
    assert not torch.allclose(out.layer_states[0], out.layer_states[1])
    for a in out.layer_attn:
        assert torch.allclose(a.sum(-1), torch.ones(2, 3)) and (a[1, :, 2:] == 0).all()
    assert (out.layer_states[0][1, 2:] == 0).all()  # source padding zeroed
    student = SimpleNamespace(enc_states=torch.randn(2, 4, 8), layer_states=None)
    student.layer_states = [student.enc_states]
    term = HiddenStateMSE(8, t.hidden_size, student_layers=[0], teacher_layers=[0])
    ctx = LossContext(student, batch, t.pad_id, teacher=out)
    first = term(ctx)
    term.layers.teacher = [1]
    assert torch.isfinite(first) and not torch.allclose(first, term(ctx))


# ---- end to end ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "extra"),
    [("bart", ["distill.teacher_outputs=cached", "distill.topk=4"]),
     ("gpt2", ["distill.seqkd.enabled=true", "distill.seqkd.gold_fraction=0.5"])],
)  # fmt: skip
def test_distil_hf_teacher_into_gru_student(kind, extra, saved, tmp_path):
    cfg = compose_cfg(hf_overrides(saved[kind], tmp_path) + extra, tmp_path)
    validate(cfg)
    metrics = run_job(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["val/ppl"] == metrics["val/ppl"] and metrics["val/ppl"] > 1
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["vocab_hash"] == HFTeacher(str(saved[kind])).vocab_hash


def test_no_eos_tokenizer_fails_validation_naming_the_teacher(saved, tmp_path):
    bad = tmp_path / "noeos"
    shutil.copytree(saved["gpt2"], bad)
    cfg_file = bad / "tokenizer_config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "eos_token": None}))
    with pytest.raises(ConfigError, match=r"^teacher.path=.*no eos_token"):
        validate(compose_cfg(hf_overrides(bad, tmp_path), tmp_path))


def test_data_uses_the_teachers_tokenizer_and_keys_it(saved, tmp_path):
    from hydra.utils import instantiate

    dms = {}
    for kind in ("bart", "gpt2"):
        dm = instantiate(compose_cfg(hf_overrides(saved[kind], tmp_path), tmp_path).data)
        dm.load()
        dms[kind] = dm
        assert dm.vocab_hash == HFTeacher(str(saved[kind])).vocab_hash
        assert (dm.pad_id, dm.eos_id) == (dm.tokenizer.pad_token_id, dm.tokenizer.eos_token_id)
    assert dms["bart"].fingerprint != dms["gpt2"].fingerprint


@pytest.mark.slow
def test_quickstart_with_an_hf_teacher(saved, tmp_path):
    overrides = [*hf_overrides(saved["gpt2"], tmp_path), "experiment=quickstart"]
    with pytest.raises(ConfigError, match=r"distill.topk=32 exceeds data.vocab_size=25"):
        validate(compose_cfg([*overrides, "distill.topk=32"], tmp_path))  # the teacher's size
    cfg = compose_cfg([*overrides, "distill.topk=4"], tmp_path)
    validate(cfg)
    run_job(cfg)
    comparison = json.loads((tmp_path / "run" / "comparison.json").read_text())
    for role in ("student_scratch", "student_distilled"):
        assert 0.0 <= comparison[role]["val/teacher_agreement"] <= 1.0
        assert 0.0 <= comparison[role]["val/attention_js"] <= 1.0
