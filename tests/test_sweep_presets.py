"""Sweep presets (conf/hparams_search), the paper preset and the SLURM launcher compose with
the axes, seeds and keys they promise; the job's return value is what the sweeper optimises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from distillab.errors import ConfigError
from distillab.train import CONF_DIR, objective
from distillab.validate import validate
from tests.conftest import compose_cfg

HAS_COMPRESS = (Path(CONF_DIR) / "compress").is_dir()  # issue 11: the sparsity axis


def hydra_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_kd_grid_is_temperature_x_alpha_x_sparsity():
    cfg = hydra_cfg(["experiment=distill", "hparams_search=kd_grid"])
    params = cfg.hydra.sweeper.params
    assert params["distill.objective.temperature"] == "1,2,4,8"
    assert params["distill.objective.alpha"] == "0.25,0.5,0.75,1.0"
    assert params["compress.sparsity"] == "0,0.5,0.8,0.9" and params["compress"] == "prune"
    assert cfg.distill.teacher_outputs == "cached"


@pytest.mark.skipif(not HAS_COMPRESS, reason="the compress group (issue 11) is not merged")
def test_kd_grid_sparsity_axis_composes():
    cfg = hydra_cfg(["experiment=distill", "compress=prune", "compress.sparsity=0.8"])
    assert cfg.compress.sparsity == 0.8


@pytest.mark.parametrize("name", ["optuna", "optuna_pareto"])
def test_optuna_presets_search_alpha_temperature_lr_and_sparsity(name):
    cfg = hydra_cfg(["experiment=distill", f"hparams_search={name}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and "TPESampler" in sweeper.sampler._target_
    assert set(sweeper.params) == {
        "distill.objective.alpha",
        "distill.objective.temperature",
        "optimizer.lr",
        "compress",
        "compress.sparsity",
    }
    if name == "optuna":
        assert cfg.optimized_metric == "compression/metrics_after/val/ppl"
        assert sweeper.direction == "minimize"
    else:
        assert list(cfg.optimized_metric) == [
            "compression/metrics_after/val/ppl",
            "compression/size_bytes_compressed",
        ]
        assert list(sweeper.direction) == ["minimize", "minimize"]


@pytest.mark.parametrize(
    ("preset", "model"),
    [("paper_quickstart", "models.Seq2Seq"), ("paper_quickstart_transformer", "HFSeq2Seq")],
)
def test_paper_quickstart_pins_three_seeds_the_teacher_seed_and_budgets(preset, model):
    """Both paper presets: their quickstart's models under one protocol (paper/)."""
    cfg = hydra_cfg([f"experiment={preset}"])
    assert cfg.experiment_name == preset
    assert cfg.model._target_.endswith(model) and cfg.teacher.train.model._target_.endswith(model)
    base = hydra_cfg([f"experiment={preset.removeprefix('paper_')}"])  # the same models
    assert cfg.model == base.model and cfg.teacher.train.model == base.teacher.train.model
    assert cfg.hydra.sweeper.params.seed == "1,2,3"
    assert cfg.job == "distillab.jobs.quickstart.run"
    assert cfg.teacher.train.seed == 42  # not ${seed}: one registry teacher for all seeds
    assert cfg.data.seed == 42  # the splits are in the teacher's key too
    assert cfg.trainer.max_steps == 800 and cfg.teacher.train.trainer.max_steps == 800
    assert cfg.data.max_train_examples == 3000


def test_slurm_launcher_keys():
    launcher = hydra_cfg(["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"]).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == 4  # one DDP process per GPU
    for key in ("partition", "timeout_min", "mem_gb", "cpus_per_task", "signal_delay_s"):
        assert key in launcher
    assert launcher.max_num_timeout > 0  # requeued on timeout / preemption


def test_reports_are_configured_for_every_multirun():
    callbacks = hydra_cfg([]).hydra.callbacks
    assert callbacks.report._target_ == "distillab.report.callback.SweepReport"


def test_objective_is_a_metric_or_a_list_with_compression_figures(tmp_path):
    cfg = OmegaConf.create({"optimized_metric": "val/ppl", "paths": {"output_dir": str(tmp_path)}})
    assert objective(cfg, {"val/ppl": 12.5}) == 12.5
    assert objective(cfg, {"val/ppl": float("nan")}) is None
    (tmp_path / "compression.json").write_text('{"size_bytes_compressed": 4096}')
    cfg.optimized_metric = ["val/ppl", "compression/size_bytes_compressed"]
    assert objective(cfg, {"val/ppl": 12.5}) == [12.5, 4096.0]


@pytest.mark.parametrize("value", [3, [], ["val/ppl", 1]])
def test_bad_optimized_metric_is_refused(value, tmp_path):
    cfg = compose_cfg(["experiment=student"], tmp_path)
    with open_dict(cfg):
        cfg.optimized_metric = value
    with pytest.raises(ConfigError, match="optimized_metric"):
        validate(cfg)


def test_multi_objective_metric_validates(tmp_path):
    cfg = compose_cfg(["experiment=student"], tmp_path)
    with open_dict(cfg):
        cfg.optimized_metric = ["val/ppl", "model/params"]
    validate(cfg)


def test_the_optuna_preset_keeps_its_study_in_the_sweep_directory(tmp_path):
    """storage: optuna.db in the sweep directory (made first); the sampler's seed moves on by
    the jobs already there, so a continued study draws new points."""
    sweep = tmp_path / "sweep"
    cfg = hydra_cfg(["experiment=distill", "hparams_search=optuna", f"hydra.sweep.dir={sweep}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper.study_name == "kd_tpe"
    assert sweeper.storage == f"sqlite:///{sweep / 'optuna.db'}" and sweep.is_dir()
    assert sweeper.sampler.seed == 1
    (sweep / "lr=0.01" / ".hydra").mkdir(parents=True)
    (sweep / "lr=0.01" / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=0.01\n")
    assert (
        hydra_cfg(["hparams_search=optuna", f"hydra.sweep.dir={sweep}"]).hydra.sweeper.sampler.seed
        == 2
    )
