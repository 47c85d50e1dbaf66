"""Bad compression settings are refused by validate, before any work."""

import pytest

from distillab.errors import ConfigError
from distillab.validate import validate
from tests.conftest import TINY, compose_cfg


class OneShot:
    """A pruning method that declares neither `gradual` nor `shrinks`: one step only."""

    def prune(self, model, sparsity):
        return model


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["compress=prune", "compress.sparsity=1.0"], "compress.sparsity=1.0 is out of range"),
        (["compress=hybrid", "compress.sparsity=-0.1"], "compress.sparsity=-0.1 is out of range"),
        (["compress=prune", "+compress.sparsty=0.5"], "did you mean compress.sparsity"),
        (["compress=prune", "compress.mode=blocky"], "compress.mode='blocky' is not allowed"),
        (
            ["compress=prune", "compress.pruners.unstructured.scope=row"],
            "compress.pruners.unstructured.scope='row' is not allowed",
        ),
        (
            ["compress=prune", "compress.schedule.end_step=100"],
            "compress.schedule.end_step=100 is past trainer.max_steps=6",
        ),
        (
            ["compress=prune", "compress.schedule.start_step=5", "compress.schedule.end_step=2"],
            "compress.schedule.end_step=2 is out of range",
        ),
        (
            [
                "compress=prune",
                "+compress.pruners.oneshot._target_=tests.compress.test_config.OneShot",
                "compress.mode=oneshot",
            ],
            "compress.mode=oneshot prunes in one step after training",
        ),
        (["compress=quantize", "compress.eval_inputs=0"], "compress.eval_inputs=0 is out of range"),
        (
            ["compress=prune", "compress.pruners.unstructured._target_=nowhere.Pruner"],
            "cannot be imported",
        ),
    ],
)
def test_bad_compress_config_is_refused(tmp_path, overrides, message):
    cfg = compose_cfg([*TINY, *overrides], tmp_path)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate(cfg)


@pytest.mark.parametrize("preset", ["none", "prune", "quantize", "hybrid"])
def test_presets_validate(tmp_path, preset):
    validate(compose_cfg([*TINY, f"compress={preset}"], tmp_path))


@pytest.mark.parametrize(
    "overrides",
    [
        ["compress.schedule=null"],
        [],  # the preset's schedule, replayed after training
        ["compress.schedule=null", "compress.finetune_steps=3"],
    ],
)
def test_structured_validates_one_shot_with_finetuning_and_on_the_schedule(tmp_path, overrides):
    base = ["compress=prune", "compress.mode=structured", "compress.sparsity=0.5"]
    validate(compose_cfg([*TINY, *base, *overrides], tmp_path))
