"""Attention maps, their heatmaps and the teacher-student JS divergence."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from distillab.analysis.attention import attention_js, plot_batch
from distillab.checkpoint import load_model
from distillab.compose import compose
from distillab.data.batching import collate
from distillab.models import Seq2Seq
from distillab.pipelines.attention import attention_maps
from distillab.train import run_job
from tests.conftest import compose_cfg
from tests.hf_tiny import tiny_tokenizer
from tests.teachers.test_hf import hf_overrides, saved  # noqa: F401 - the saved-models fixture


def test_js_is_zero_for_equal_rows_one_for_disjoint_and_ignores_masked_positions():
    a = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]])
    keys = torch.tensor([[True, True, False]])
    queries = torch.tensor([[True, True]])
    assert attention_js(a, a, queries, keys) == pytest.approx(0.0, abs=1e-6)
    b = torch.tensor([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])
    assert attention_js(a, b, queries, keys) == pytest.approx(0.5, abs=1e-6)  # rows: 1, 0
    assert attention_js(a, b, torch.tensor([[True, False]]), keys) == pytest.approx(1.0)
    c = torch.tensor([[[1.0, 0.0, 9.0], [0.5, 0.5, 9.0]]])  # weight on a padded key: ignored
    assert attention_js(a, c, queries, keys) == pytest.approx(0.0, abs=1e-6)


def test_plot_batch_writes_one_png_per_dialogue(tmp_path):
    tok = tiny_tokenizer("bart")
    pad, bos, eos = tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
    items = [
        {"index": i, "src": tok(s)["input_ids"], "head_src": tok(s)["input_ids"],
         "conv": tok(f"{s} {t}")["input_ids"], "tgt": tok(t)["input_ids"], "topic": 0,
         "rating": 0.0}
        for i, (s, t) in enumerate([("hello how are you", "fine thanks"), ("sunny today", "cold")])
    ]  # fmt: skip
    batch = collate(items, pad, bos, eos)
    model = Seq2Seq(vocab_size=len(tok), pad_id=pad, emb_dim=8, hidden_size=8).eval()
    paths, js = plot_batch(model, batch, tok, tmp_path, limit=2)
    assert js is None  # no teacher
    assert [p.name for p in paths] == ["dialogue_00000.png", "dialogue_00001.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


@pytest.mark.slow
def test_attention_job_on_a_distilled_student(saved, tmp_path):  # noqa: F811
    cfg = compose_cfg(hf_overrides(saved["bart"], tmp_path), tmp_path)
    run_job(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    trained = compose(OmegaConf.load(tmp_path / "run" / "config.yaml"))  # its data and teacher
    out = tmp_path / "run" / "attention"
    metrics = attention_maps(
        load_model(str(ckpt)), trained.teacher, trained.data, out, 3, str(ckpt)
    )
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3 and 0.0 <= metrics["val/attention_js"] <= 1.0
    saved_info = json.loads((out / "attention.json").read_text())
    assert saved_info["val/attention_js"] == metrics["val/attention_js"]
