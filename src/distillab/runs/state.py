"""What a run directory holds (`status.json`, its config, its checkpoints) and the checks made
before any work: may it be resumed, may it be reused (see `distillab.runs`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from distillab.checkpoint import CheckpointError, check_checkpoint
from distillab.errors import ConfigError
from distillab.modules.reliability import PREVIOUS_LAST
from distillab.utils import status
from distillab.utils.ranks import is_rank_zero

LAST = Path("checkpoints") / "last.ckpt"
PREV = LAST.with_name(PREVIOUS_LAST)  # the last checkpoint before it (SafeCheckpointIO)
BEST = LAST.with_name("best.ckpt")  # ModelCheckpoint's (conf/callbacks/default.yaml)
STATUS = status.STATUS_FILE


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


# top-level keys that say how a run is run, not what it computes: a resumed run saves `resume`
# set, a sweep re-run sets `rerun_failed`, `threads` follows the launcher
HOW_KEYS = frozenset({"resume", "rerun_failed", "threads"})


def config_changes(run_dir: Path, cfg: dict, limit: int = 3) -> list[str]:
    """`key: saved -> now` for the resolved config values that differ from the run's saved
    `config.yaml` (HOW_KEYS aside); none without a saved config."""
    if not (run_dir / "config.yaml").is_file():
        return []
    saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    changes: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if key or k not in HOW_KEYS:
                    walk(a.get(k, "<unset>"), b.get(k, "<unset>"), f"{key}.{k}" if key else k)
        elif a != b:
            changes.append(f"{key}: {a} -> {b}")

    walk(saved, cfg, "")
    return changes[:limit]


class HoldsRun(ConfigError):
    """The run directory holds a run that is not this job's to continue (finished, failed,
    running): its record is never rewritten."""

    def __init__(self, message: str, run_dir: Path, state: str) -> None:
        super().__init__(message)
        self.run_dir, self.state = run_dir, state


def continues(state: str | None, cfg: dict) -> bool:
    """Whether a run recorded in `state` is continued in place by this job: an interrupted one
    (a requeued job, a sweep run again), a failed one only when `rerun_failed` is set."""
    return state == "interrupted" or (state == "failed" and bool(cfg.get("rerun_failed")))


def check_run_dir_reuse(cfg: dict) -> None:
    """A run directory that holds a run already is reused only to continue it: an interrupted
    run of the same config (a requeued job, a sweep run again), or a failed one with
    `rerun_failed=true`. Rank 0 decides; other ranks follow it."""
    out = Path(cfg["paths"]["output_dir"])
    state = recorded_state(out)
    if state is None or not is_rank_zero():
        return
    if not continues(state, cfg):
        raise HoldsRun(
            f"paths.output_dir={out} holds a run already; continue it with resume={out} "
            "or choose a new directory",
            out,
            state,
        )
    changes = config_changes(out, cfg)
    if changes:
        raise ConfigError(
            f"paths.output_dir={out} holds an {state} run of another config "
            f"({'; '.join(changes)}); continue that run with resume={out}, or choose a new "
            "directory"
        )
