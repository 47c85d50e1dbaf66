"""`distillab-train`: the Hydra app. Composes distillab/conf/train.yaml, validates it and runs
`cfg.job`.

Every config error exits with status 2 and one line, without a traceback (unless
HYDRA_FULL_ERROR=1): ours (`DistillabError`) as `distillab: error: ...`, and Hydra's own
(unknown override key, unknown group choice, bad override syntax) with Hydra's message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
import traceback
from pathlib import Path

import hydra
from hydra.errors import HydraException, InstantiationException
from hydra.utils import get_method
from omegaconf import DictConfig

from distillab.errors import DistillabError
from distillab.utils import console, resolvers
from distillab.utils.status import error_line

resolvers.register()

CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped inside the package


def run_job(cfg: DictConfig) -> dict[str, float]:
    """Compose the run's objects and hand them to the job named by `cfg.job` (e.g.
    distillab.jobs.train.run); returns its metrics."""
    from distillab.compose import compose

    return get_method(cfg.job)(compose(cfg)).metrics


def first_distillab_error(e: BaseException) -> DistillabError | None:
    """Hydra wraps errors raised inside instantiate(); find ours in the cause chain."""
    while e is not None and not isinstance(e, DistillabError):
        e = e.__cause__
    return e


class HeldStream:
    """Holds what is written to it until `release()`, then passes everything through (so a
    logging handler created meanwhile keeps working)."""

    def __init__(self, stream) -> None:
        self.stream, self.held = stream, []

    def write(self, text: str) -> int:
        if self.held is None:
            return self.stream.write(text)
        self.held.append(text)
        return len(text)

    def flush(self) -> None:
        if self.held is None:
            self.stream.flush()

    def release(self, keep: bool = True) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            if keep:
                self.stream.write("".join(held))
                self.stream.flush()
        if sys.stderr is self:
            sys.stderr = self.stream

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


task_started = False  # set when Hydra calls the task function: its errors are not Hydra's
held_stderr: HeldStream | None = None


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | list[float] | None:
    global task_started
    task_started = True
    if held_stderr is not None:
        held_stderr.release()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console.setup()  # Hydra has set up logging: console + <run_dir>/train.log
    start = time.time()
    try:
        from distillab.runs.liveness import settle
        from distillab.runs.rerun import finished_result, refusal_note
        from distillab.runs.resume import prepare_resume
        from distillab.runs.state import HoldsRun
        from distillab.runs.tracked import run_tracked
        from distillab.utils.ranks import is_rank_zero
        from distillab.validate import validate  # imports torch: kept out of composition

        if is_rank_zero():  # a run left `running` there: wait for it (sweep) or mark it lost
            settle(Path(cfg.paths.output_dir), wait=in_multirun())
        try:
            validate(cfg)  # every config error, before any data is read or teacher trained
        except HoldsRun as held:
            if not in_multirun():
                raise
            metrics = finished_result(cfg, held)  # the same sweep run again: its result
            if metrics is None:  # its record stays as it is (the report shows it)
                console.log.error(f"distillab: job not run: {refusal_note(held)}")
                return None
            return objective(cfg, metrics)
        cfg = prepare_resume(cfg)  # resume=RUN_DIR: that run's saved config
        metrics = run_tracked(cfg, run_job)  # status.json; SIGTERM/SIGINT: how to resume
    except Exception as e:
        ours = first_distillab_error(e)
        if in_multirun():  # the sweep goes on; its report lists this job with its error
            from distillab.runs.ranks import release_lost_ranks
            from distillab.runs.tracked import NotRequeued

            if isinstance(e, NotRequeued):  # it stays interrupted
                console.log.warning(f"distillab: job not finished: {e}")
                return None
            record_failure(cfg, ours or e)
            release_lost_ranks()  # a dead rank's result, or submitit's launcher waits forever
            console.log.error(
                f"distillab: job failed: {error_line(ours or e)}", exc_info=ours is None
            )
            return None
        if ours is None:
            raise
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        console.log.error(f"distillab: error: {ours}")
        sys.exit(2)
    console.log.info(f"done in {time.time() - start:.0f}s: {cfg.paths.output_dir}")
    return objective(cfg, metrics)


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | list[float] | None:
    """What the sweeper optimises: `optimized_metric`, a metric or compression figure
    (`compression/<key>`) by name, or a list of them (a multi-objective Optuna sweep); None
    when one is missing or not finite (Optuna marks the trial failed)."""
    from distillab.report.collect import figures

    names = cfg.get("optimized_metric")
    if names is None:
        return None
    values = figures(cfg.paths.output_dir, metrics)
    picked = [values.get(n) for n in ([names] if isinstance(names, str) else names)]
    if any(v is None or not math.isfinite(v) for v in picked):
        return None
    return picked[0] if isinstance(names, str) else picked


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(cfg: DictConfig, e: BaseException) -> None:
    """`<run_dir>/status.json`: failed, with the error (the sweep report shows it); also for
    errors before the job started (its config), which run_tracked does not see."""
    try:
        from distillab.runs.tracked import write_status

        write_status(Path(cfg.paths.output_dir), "failed", error=error_line(e))
    except Exception:  # noqa: BLE001 - an unresolvable output_dir or a full disk: nothing to add
        pass


def is_hydra_config_error(e: BaseException | None) -> bool:
    """Hydra's composition errors: an unknown override key or group choice, bad syntax."""
    return isinstance(e, HydraException) and not isinstance(e, InstantiationException)


def multirun_requested(argv: list[str]) -> bool:
    """Whether the command line asks Hydra for a multirun (`-m`/`--multirun`), known before
    `hydra.main` parses it: Hydra's command-line flags mirrored, so that an option's value is
    never read as a flag (overrides are positional)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("overrides", nargs="*")
    for flags in (
        ("--help", "-h"),
        ("--hydra-help",),
        ("--resolve",),
        ("--run", "-r"),
        ("--version",),
    ):
        parser.add_argument(*flags, action="store_true")
    parser.add_argument("--multirun", "-m", action="store_true")
    parser.add_argument("--shell-completion", "-sc", action="store_true")
    parser.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    for flags in (("--package", "-p"), ("--config-path", "-cp"), ("--config-name", "-cn")):
        parser.add_argument(*flags)
    parser.add_argument("--config-dir", "-cd")
    parser.add_argument("--experimental-rerun")
    info = ["all", "config", "defaults", "defaults-tree", "plugins", "searchpath"]
    parser.add_argument("--info", "-i", nargs="?", choices=info)
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            args, _ = parser.parse_known_args(argv)
        except SystemExit:
            return False
    return bool(args.multirun) and not args.version  # --version: Hydra prints it and exits


def sweep_failures() -> int:
    """Jobs of the multirun that just ended (its report) that did not finish."""
    from distillab.report import callback

    return len(callback.LAST_REPORT.failed) if callback.LAST_REPORT is not None else 0


def cli() -> None:
    """The console entry point: `main` with Hydra's own errors (raised before the task
    function starts) exiting with status 2 like ours. Hydra reports them and exits with 1;
    their message is kept. A run directory that cannot be created gets one line, not Hydra's
    traceback: stderr is held until the task starts (not in multirun, where the task runs in
    the launcher's jobs and the sweeper's output must not wait)."""
    global held_stderr
    from distillab.utils.resume_args import resume_overrides, resume_sweep_args  # no torch

    sys.argv[1:] = resume_sweep_args(sys.argv[1:])  # resume_sweep=DIR: that sweep's command
    sys.argv += resume_overrides(sys.argv[1:])  # resume=RUN_DIR: log into RUN_DIR
    multirun = multirun_requested(sys.argv[1:])
    if multirun:
        console.quiet_submitit()  # its sacct warning once, on a cluster without accounting
    else:
        held_stderr = sys.stderr = HeldStream(sys.stderr)
    try:
        main()
        if multirun and sweep_failures():
            raise SystemExit(1)
    except SystemExit as e:
        cause = e.__context__  # what Hydra reported before sys.exit(1)
        if e.code != 1 or task_started:
            raise
        if isinstance(cause, OSError) and not is_hydra_config_error(cause):
            if held_stderr is not None:
                held_stderr.release(keep=False)
            where = f"{cause.filename}: {cause.strerror}" if cause.filename else str(cause)
            print(
                f"distillab: error: cannot create the run directory ({where}); "
                "check paths.output_root",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        if is_hydra_config_error(cause):
            raise SystemExit(2) from None
        raise
    except Exception as e:  # HYDRA_FULL_ERROR=1: Hydra raised it instead of reporting it
        if task_started or not (is_hydra_config_error(e) or isinstance(e, OSError)):
            raise
        if held_stderr is not None:
            held_stderr.release()
        traceback.print_exc()
        raise SystemExit(2) from None
    finally:
        if held_stderr is not None:
            held_stderr.release()
            held_stderr = None


if __name__ == "__main__":
    cli()
