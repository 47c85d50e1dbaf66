"""Structured pruning from the preset, end to end at tiny size: `compress=prune
compress.mode=structured compress.sparsity=0.5` prunes after training and fine-tunes the
smaller model (the schedule replayed after training), with a teacher's hidden-state term too."""

import json
from pathlib import Path

import pytest
import torch

from distillab.checkpoint import load_model
from distillab.compress import HiddenUnitPruning
from tests.compress.test_run import run
from tests.conftest import TINY_TEACHER

STRUCTURED = ["compress=prune", "compress.mode=structured", "compress.sparsity=0.5"]


def pruned_once(run_dir: Path) -> torch.nn.Module:
    """The checkpoint the step started from, pruned in one step without fine-tuning."""
    used = json.loads((run_dir / "checkpoint.json").read_text())
    return HiddenUnitPruning().prune(load_model(used["best"] or used["last"]), 0.5)


def changed(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
    return any(not torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("embedding"))


@pytest.mark.slow
def test_structured_from_the_preset_prunes_then_fine_tunes(tmp_path):
    r = run([*STRUCTURED, "compress.export=false"], tmp_path)
    assert r["params_non_embedding"] <= 0.5 * r["params_non_embedding_before"]
    run_dir = tmp_path / "run"
    small = load_model(str(run_dir / "compressed" / "model.ckpt"))
    assert small.hidden_size == 16
    assert changed(small, pruned_once(run_dir))  # the fine-tuning steps ran on the small model
    assert r["metrics_after"]["val/ppl"] > 0


@pytest.mark.slow
def test_structured_one_step_with_recovery_under_a_hidden_state_objective(tmp_path):
    overrides = [
        "experiment=distill", "distill=hidden", *TINY_TEACHER,
        f"paths.cache_dir={tmp_path}/cache", *STRUCTURED, "compress.schedule=null",
        "compress.finetune_steps=3", "compress.export=false",
    ]  # fmt: skip
    r = run(overrides, tmp_path)
    assert r["params_non_embedding"] <= 0.5 * r["params_non_embedding_before"]
    run_dir = tmp_path / "run"
    state = torch.load(run_dir / "compressed" / "model.ckpt", weights_only=False)["state_dict"]
    projection = [v for k, v in state.items() if k.endswith("projection.weight")]
    assert [p.shape[1] for p in projection] == [16]  # narrowed to the student's new width
    assert changed(load_model(str(run_dir / "compressed" / "model.ckpt")), pruned_once(run_dir))
