"""Resolvers that read Hydra's state: threads per parallel job, the sweep's name."""

from omegaconf import OmegaConf

from distillab.utils import resolvers
from distillab.utils.resolvers import parallel_jobs


def test_parallel_jobs_counts_like_joblib():
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert parallel_jobs({"_target_": joblib, "n_jobs": -1}, cores=8) == 8
    assert parallel_jobs({"_target_": joblib, "n_jobs": -2}, cores=8) == 7
    assert parallel_jobs({"_target_": joblib, "n_jobs": 3}, cores=8) == 3
    assert parallel_jobs({"_target_": "hydra._internal.core_plugins.basic_launcher"}, 8) == 1


def test_outside_a_multirun_the_defaults_apply():
    resolvers.register()
    cfg = OmegaConf.create(
        {"a": "${threads_per_job:}", "b": "${threads_per_job:2}", "g": "${sweep_name:solo}"}
    )
    assert cfg.a is None and cfg.b == 2 and cfg.g == "solo"


def test_in_a_joblib_multirun_threads_split_the_cores_and_wandb_groups_by_sweep(monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from distillab.train import CONF_DIR

    resolvers.register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=wandb"],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = "/somewhere/multiruns/2026-01-01/10-00-00_distill_abc123"
        cfg.hydra.runtime.output_dir = "/somewhere/multiruns/2026-01-01/10-00-00_distill_abc123/0"
    monkeypatch.setattr(resolvers, "available_cores", lambda: 8)
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        assert cfg.threads == 4  # 8 cores / 2 parallel jobs
        assert cfg.logger.wandb.group == "10-00-00_distill_abc123"
    finally:
        HydraConfig.instance().cfg = saved
