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
