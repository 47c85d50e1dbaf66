"""Resuming a run in place, and the run's recorded status.

`distillab-train resume=RUN_DIR` runs RUN_DIR's saved, resolved `config.yaml` again with
`resume` set: the job trains from `RUN_DIR/checkpoints/last.ckpt` (weights, optimiser,
scheduler, loop and sampler position, RNG states) up to the configured final step and writes
its results there. The CLI points Hydra's run directory at RUN_DIR (its log file continues) and
keeps Hydra's record of the resuming invocation in a fresh `.hydra/resume_<time>` folder.

A job whose own run directory already holds its interrupted run (`status.json`: interrupted,
and `checkpoints/last.ckpt`) continues it the same way, without `resume=`: a SLURM job that
submitit requeued after a time limit or preemption runs again with the same overrides in the
same job directory. Its config must be the run's (`config.yaml`), else it is refused with the
keys that differ. A run directory that finished or failed is never reused.

`status.json` in a run directory says whether the run finished: `running`, `finished`,
`failed` (with the error) or `interrupted` (with the signal and how to resume), written
atomically by rank 0 only.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from distillab.checkpoint import CheckpointError, check_checkpoint
from distillab.errors import ConfigError, DistillabError
from distillab.modules import reliability
from distillab.modules.reliability import PREVIOUS_LAST, Preempted, exit_code
from distillab.utils import status
from distillab.utils.console import CurrentStreamHandler, log

LAST = Path("checkpoints") / "last.ckpt"
PREV = LAST.with_name(PREVIOUS_LAST)  # the last checkpoint before it (SafeCheckpointIO)
BEST = LAST.with_name("best.ckpt")  # ModelCheckpoint's (conf/callbacks/default.yaml)
STATUS = status.STATUS_FILE
# errors that mean "the output cannot be written", turned into one clear line
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class OutputError(DistillabError):
    """The run's output cannot be written (disk full, read-only, no permission)."""


def is_rank_zero() -> bool:
    """Rank 0 of a distributed run (or a single process): the one that writes artefacts. Known
    from the environment before any trainer exists (LOCAL_RANK, RANK, SLURM_PROCID)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def check_resumable(run_dir: str) -> None:
    """A one-line error unless `run_dir` holds a config and an intact last checkpoint (read
    before any work: a damaged one is named with how to recover; the run is left as it was)."""
    d = Path(run_dir)
    if (d / "config.yaml").is_file() and not (d / LAST).is_file() and (d / PREV).is_file():
        raise ConfigError(
            f"resume={run_dir}: no {LAST} there, but {PREV} (a save was cut between its two "
            f"renames): mv {d / PREV} {d / LAST} and resume again"
        )
    for need in ("config.yaml", str(LAST)):
        if not (d / need).is_file():
            raise ConfigError(
                f"resume={run_dir}: no {need} there (a run directory that saved its config "
                "and a last checkpoint)"
            )
    check_last(d)


def check_last(run_dir: Path) -> None:
    """Refuse a damaged last checkpoint in one line that says how to recover."""
    try:
        check_checkpoint(run_dir / LAST)
    except CheckpointError as e:
        raise CheckpointError(f"resume={run_dir}: {e}; {recovery(run_dir)}") from None


def recovery(run_dir: Path) -> str:
    """How to resume a run whose last checkpoint is damaged: from an intact earlier one."""
    last = run_dir / LAST
    for earlier, what in ((PREV, "the previous last checkpoint"), (BEST, "the best checkpoint")):
        try:
            step = check_checkpoint(run_dir / earlier).get("global_step", "?")
        except CheckpointError:
            continue
        return (
            f"{what} is intact (step {step}): cp {run_dir / earlier} {last} and resume again "
            "to continue from there"
        )
    return (
        f"no intact earlier checkpoint: put a good copy of {last} back and resume again, or "
        "start the run anew in another directory"
    )


def recorded_state(run_dir: Path) -> str | None:
    """The state `status.json` records (`finished` for a bare `metrics.json`), None for a
    directory that holds no run."""
    try:
        state = json.loads((run_dir / STATUS).read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        state = "unreadable" if (run_dir / STATUS).exists() else None
    if state is None and (run_dir / "metrics.json").exists():
        return "finished"
    return state


def config_changes(run_dir: Path, cfg: dict, limit: int = 3) -> list[str]:
    """`key: saved -> now` for the resolved config values that differ from the run's saved
    `config.yaml` (`resume` aside: a resumed run saves it set); none without a saved config."""
    if not (run_dir / "config.yaml").is_file():
        return []
    saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    changes: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if key or k != "resume":
                    walk(a.get(k, "<unset>"), b.get(k, "<unset>"), f"{key}.{k}" if key else k)
        elif a != b:
            changes.append(f"{key}: {a} -> {b}")

    walk(saved, cfg, "")
    return changes[:limit]


def check_run_dir_reuse(cfg: dict) -> None:
    """A run directory that holds a run already is reused only to continue it: an interrupted
    run of the same config (a requeued job). Rank 0 decides; other ranks follow it."""
    out = Path(cfg["paths"]["output_dir"])
    state = recorded_state(out)
    if state is None or not is_rank_zero():
        return
    if state != "interrupted":
        raise ConfigError(
            f"paths.output_dir={out} holds a run already; continue it with resume={out} "
            "or choose a new directory"
        )
    changes = config_changes(out, cfg)
    if changes:
        raise ConfigError(
            f"paths.output_dir={out} holds an interrupted run of another config "
            f"({'; '.join(changes)}); continue that run with resume={out}, or choose a new "
            "directory"
        )


def continue_in_place(cfg: DictConfig) -> DictConfig:
    """A job whose run directory holds its own interrupted run with a last checkpoint resumes
    it (`resume` set to the run directory); without one (interrupted before its first
    checkpoint) it starts again there. DDP ranks > 0, started once rank 0 has marked the run
    `running`, follow a resumed rank 0."""
    out = Path(cfg.paths.output_dir)
    if cfg.get("resume") or not ((out / LAST).is_file() or (out / PREV).is_file()):
        return cfg
    state = recorded_state(out)
    if state != "interrupted" and not (not is_rank_zero() and state == "running" and _resumed(out)):
        return cfg
    log.info(f"distillab: {out} holds this job's interrupted run: continuing it")
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


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint `fit` starts from: the run's last one when resuming (checked: a damaged
    one is refused in one line, with how to recover), else none."""
    last = Path(run_dir) / LAST
    if not (cfg.get("resume") and last.is_file()):
        return None
    check_last(Path(run_dir))
    return str(last)


def write_status(run_dir: Path, state: str, **extra: Any) -> None:
    if is_rank_zero():
        status.write_status(run_dir, state, **extra)


def run_tracked(cfg: DictConfig, run: Callable[[DictConfig], dict]) -> dict:
    """Run the job with `status.json` kept up to date; an interruption by SIGTERM/SIGINT exits
    with 128+signal after saying how to resume; an unwritable output becomes one line."""
    run_dir = Path(cfg.paths.output_dir)
    quiet_other_ranks()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_status(run_dir, "running", started=started, resumed=bool(cfg.get("resume")))
    with reliability.preemption_notice():
        return _run_recorded(cfg, run, run_dir)


def _run_recorded(cfg: DictConfig, run: Callable[[DictConfig], dict], run_dir: Path) -> dict:
    try:
        metrics = run(cfg)
    except (SIGTERMException, KeyboardInterrupt, Preempted) as e:
        name = "SIGINT" if isinstance(e, KeyboardInterrupt) else reliability.last_signal
        name = name or "SIGTERM"
        if (run_dir / LAST).is_file():
            how = f"resume with: distillab-train resume={run_dir} (a requeued job resumes itself)"
        else:
            how = "no checkpoint of this run yet: run the same command again"
        write_status(run_dir, "interrupted", signal=name, resume=how)
        log.warning(f"distillab: interrupted ({name}); {how}")
        if name == reliability.preempt_signal().name:
            reliability.hand_over()  # submitit: requeues and exits (rank 0); else returns
        sys.exit(exit_code(name))
    except OSError as e:
        write_status(run_dir, "failed", error=str(e))
        if e.errno in OUTPUT_ERRNOS:
            raise OutputError(
                f"cannot write {e.filename or 'the output'}: {e.strerror} (disk full or output "
                "not writable); metrics.json is written atomically, so none was left half-written"
            ) from e
        raise
    except BaseException as e:
        write_status(run_dir, "failed", error=f"{type(e).__name__}: {e}")
        raise
    write_status(run_dir, "finished", metrics_file=str(run_dir / "metrics.json"))
    return metrics


def quiet_other_ranks() -> None:
    """DDP ranks > 0 keep their own log file (`train_ddp_process_<rank>.log`) and warnings on
    stderr; the console's progress lines are rank 0's."""
    if is_rank_zero():
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, CurrentStreamHandler) and handler.to == "stdout":
            root.removeHandler(handler)
