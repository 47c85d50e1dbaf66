"""The config a job runs when it resumes a run: `resume=RUN_DIR`, or a requeued job finding its
own interrupted run in its run directory (see `distillab.runs`)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from distillab.runs.state import LAST, PREV, STATUS, check_resumable, continues, recorded_state
from distillab.utils.console import log
from distillab.utils.ranks import is_rank_zero


def continue_in_place(cfg: DictConfig) -> DictConfig:
    """A job whose run directory holds its own interrupted run (or failed one, with
    `rerun_failed=true`) with a last checkpoint resumes it (`resume` set to the run directory);
    without one (stopped before its first checkpoint) it starts again there. DDP ranks > 0, started once rank 0 has marked the run
    `running`, follow a resumed rank 0."""
    out = Path(cfg.paths.output_dir)
    if cfg.get("resume") or not ((out / LAST).is_file() or (out / PREV).is_file()):
        return cfg
    state = recorded_state(out)
    if not continues(state, cfg) and not (
        not is_rank_zero() and state == "running" and _resumed(out)
    ):
        return cfg
    log.info(f"distillab: {out} holds this job's {state} run: continuing it")
    with open_dict(cfg):
        cfg.resume = str(out)
    return cfg


def _resumed(run_dir: Path) -> bool:
    try:
        return bool(json.loads((run_dir / STATUS).read_text()).get("resumed"))
    except (OSError, ValueError, AttributeError):
        return False


def prepare_resume(cfg: DictConfig) -> DictConfig:
    """With `resume` set, or a run directory holding this job's interrupted run: the run's saved
    config with `resume` kept (validated already); otherwise `cfg` unchanged."""
    cfg = continue_in_place(cfg)
    run_dir = cfg.get("resume")
    if not run_dir:
        return cfg
    check_resumable(run_dir)
    saved = OmegaConf.load(Path(run_dir) / "config.yaml")
    with open_dict(saved):
        saved.resume = str(run_dir)
        saved.paths.output_dir = str(run_dir)
    log.info(f"distillab: resuming {run_dir} from {Path(run_dir) / LAST}")
    return saved
