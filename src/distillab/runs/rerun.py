"""A sweep run again into its own directory (guides/sweeps.md): a job whose directory holds
its finished run of the same config is not run again; its recorded metrics go back to the
sweeper (an Optuna trial gets its value) and `reused.json` there tells the report so. A
finished run of another config (a default changed since) is neither reused nor overwritten:
`stale.json` there tells the report, which lists the job as stale, and the sweep exits 1. Its
`status.json` is never rewritten."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from omegaconf import DictConfig, OmegaConf

from distillab.runs.state import HoldsRun, config_changes
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json
from distillab.utils.ranks import is_rank_zero
from distillab.utils.status import REUSED_FILE, STALE_FILE, read_status


def finished_result(cfg: DictConfig, held: HoldsRun) -> dict[str, float] | None:
    """The recorded metrics of this job's finished run in its directory, marked reused; None
    when the directory holds something else (the refusal stands)."""
    run_dir = held.run_dir
    if held.state != "finished" or not (run_dir / "metrics.json").is_file():
        return None
    changes = config_changes(run_dir, OmegaConf.to_container(cfg, resolve=True))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if changes:
        log.error(
            f"distillab: {run_dir} holds a finished run of another config ({'; '.join(changes)}); "
            "left as it is: run this sweep into a new directory"
        )
        if is_rank_zero():  # for the report: this point of the sweep has no result of its own
            atomic_write_json(run_dir / STALE_FILE, {"found": now, "changes": changes})
        return None
    log.info(f"distillab: {run_dir} finished this job already: reusing its result")
    if is_rank_zero():
        atomic_write_json(run_dir / REUSED_FILE, {"reused": now})
        (run_dir / STALE_FILE).unlink(missing_ok=True)  # this config's run after all
    return json.loads((run_dir / "metrics.json").read_text())


def refusal_note(held: HoldsRun) -> str:
    """Why a job of a sweep run again did not run, for the log: its record is left as it is."""
    record = read_status(held.run_dir) or {}
    if held.state == "failed":
        return (
            f"{held.run_dir} failed before ({record.get('error', 'no error recorded')}); "
            "left as it is: rerun_failed=true runs it again"
        )
    return f"{held.run_dir} holds a {held.state} run; left as it is"
