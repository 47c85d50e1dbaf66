"""OmegaConf resolvers used by conf/: registered once, on import of the entry point."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import uuid

from omegaconf import OmegaConf


def _wandb_offline() -> bool:
    """W&B stays offline unless a key is configured (env var or a `wandb login` netrc entry)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online":
        return False
    netrc = os.path.expanduser("~/.netrc")
    return not (os.path.exists(netrc) and "api.wandb.ai" in open(netrc).read())


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _hydra_config():
    """Hydra's config of the running multirun job, or None (a single run, or outside a Hydra
    app: tests, compose())."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return hc if hc.mode == RunMode.MULTIRUN else None


def parallel_jobs(launcher, cores: int) -> int:
    """How many jobs of a sweep a launcher runs at once on this machine: joblib's `n_jobs`
    (-1: all cores, -2: all but one, as joblib counts), 1 for the sequential launcher."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n = int(launcher.get("n_jobs") or -1)
    return max(1, n if n > 0 else cores + 1 + n)


def _threads_per_job(default=None):
    """torch threads for one job: under `hydra/launcher=joblib`, cores // parallel jobs (so
    jobs x threads <= cores); under submitit, the launcher's `cpus_per_task` when set;
    otherwise `default` (null: torch's own choice)."""
    hc = _hydra_config()
    if hc is None:
        return default
    launcher, cores = hc.launcher, available_cores()
    if "submitit" in str(launcher.get("_target_", "")):
        return launcher.get("cpus_per_task") or default
    jobs = parallel_jobs(launcher, cores)
    return max(1, cores // jobs) if jobs > 1 else default


def _sweep_name(default: str = "") -> str:
    """The sweep directory's name in a multirun (W&B groups the runs of one sweep under it),
    else `default`."""
    hc = _hydra_config()
    if hc is None:
        return default
    return os.path.basename(os.path.normpath(str(hc.sweep.dir)))


JOB_NAME_MAX = 96  # characters of a job directory's name kept readable


def job_dirname(override_dirname: str) -> str:
    """A sweep job's directory name from its overrides (Hydra's `override_dirname`: sorted,
    `key=value` joined by commas), so that running a sweep again, grown or reordered, pairs
    every directory with its own configuration. Used as it is when short and filesystem-safe;
    otherwise the overrides with keys shortened to their last part (`temperature=4`), cut to
    JOB_NAME_MAX characters, then a hash of the whole string (stable, unique per overrides)."""
    name = str(override_dirname or "")
    if not name:
        return "defaults"
    safe = re.sub(r"[^\w=,.+:@%-]", "_", name)
    if safe == name and len(name) <= JOB_NAME_MAX:
        return name
    short = ",".join(re.sub(r"^[+~]*(?:[^=]*\.)?", "", item) for item in safe.split(","))
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{short[:JOB_NAME_MAX].rstrip(',')}-{digest}"


def optuna_storage(sweep_dir: str) -> str:
    """The Optuna study's storage: `optuna.db` (SQLite) in the sweep directory, created first
    (the sweeper opens it before any job makes the directory). The same directory again
    continues the study."""
    os.makedirs(sweep_dir, exist_ok=True)
    return f"sqlite:///{os.path.abspath(os.path.join(sweep_dir, 'optuna.db'))}"


def sweep_seed(seed: int, sweep_dir: str) -> int:
    """A sweeper's seed: `seed` for a new sweep directory, `seed` + the jobs already there
    when the sweep continues, so that a continued study's sampler does not draw its first
    points again."""
    found = glob.glob(os.path.join(glob.escape(sweep_dir), "*", ".hydra", "overrides.yaml"))
    return int(seed) + len(found)


def register() -> None:
    # use_cache: Hydra copies resolver caches into every job of a sweep (as for `now`), so all
    # jobs agree on the sweep directory's id.
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", _wandb_offline)
    if not OmegaConf.has_resolver("threads_per_job"):
        OmegaConf.register_new_resolver("threads_per_job", _threads_per_job)
    if not OmegaConf.has_resolver("job_dirname"):
        OmegaConf.register_new_resolver("job_dirname", job_dirname)
    for name, fn in (("optuna_storage", optuna_storage), ("sweep_seed", sweep_seed)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    if not OmegaConf.has_resolver("sweep_name"):
        OmegaConf.register_new_resolver("sweep_name", _sweep_name)
