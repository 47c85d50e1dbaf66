"""Every distillation preset, extra teachers and init-from-teacher run end to end at tiny size,
sharing one registry teacher (trained once for the module)."""

import json

import numpy as np
import pytest

from distillab.train import run_job
from tests.conftest import TINY, TINY_TEACHER, compose_cfg


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An output root whose registry holds the tiny teacher (trained by a first distill run)."""
    root = tmp_path_factory.mktemp("presets")
    cfg = compose_cfg(["experiment=distill", *TINY, *TINY_TEACHER], root / "first")
    cfg.paths.output_root = str(root / "outputs")
    cfg.paths.cache_dir = str(root / "outputs" / "cache")
    run_job(cfg)
    (entry,) = (root / "outputs" / "teachers").glob("*/registry.json")
    return root, str(entry.parent / json.loads(entry.read_text())["checkpoint"])


def run_preset(registry, tmp_path, overrides: list[str]) -> dict:
    root, _ = registry
    cfg = compose_cfg(["experiment=distill", *TINY, *TINY_TEACHER, *overrides], tmp_path)
    cfg.paths.output_root = str(root / "outputs")
    cfg.paths.cache_dir = str(root / "outputs" / "cache")
    metrics = run_job(cfg)
    assert np.isfinite(metrics["val/ppl"]) and metrics["trainer/global_step"] == 6
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val/ppl"] == metrics["val/ppl"]
    # the registry teacher was reused, never retrained
    assert len(list((root / "outputs" / "teachers").glob("*/registry.json"))) == 1
    return metrics


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["hidden", "attention", "combined", "seqkd"])
def test_distill_preset_runs_end_to_end(registry, tmp_path, preset):
    run_preset(registry, tmp_path, [f"distill={preset}", "trainer.log_every_n_steps=1"])
    logged = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    expected = {"hidden": ["train/hidden"], "attention": ["train/attention"]}
    expected["combined"] = expected["hidden"] + expected["attention"]
    for name in expected.get(preset, []):
        assert name in logged, (name, logged)


@pytest.mark.slow
def test_extra_teachers_run_end_to_end(registry, tmp_path):
    _, ckpt = registry
    run_preset(registry, tmp_path, [f"extra_teachers=[{{ckpt: {ckpt}, weight: 0.5}}]"])


@pytest.mark.slow
def test_init_from_teacher_runs_end_to_end(registry, tmp_path):
    run_preset(registry, tmp_path, ["student.init_from_teacher=true"])


@pytest.mark.slow
def test_cached_teacher_outputs_run_end_to_end(registry, tmp_path):
    run_preset(
        registry,
        tmp_path,
        ["distill.teacher_outputs=cached", "distill.topk=16", "distill.tail_samples=4"],
    )
