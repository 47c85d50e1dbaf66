"""The Hydra callback that reports a multirun when it ends (conf/hydra/default.yaml,
`hydra.callbacks.report`). Hydra skips `on_multirun_end` when the sweep itself raised; a job
that fails in a multirun records its error in its `status.json` and returns instead of raising
(distillab.train), so the sweep goes on and ends here."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("distillab")


class SweepReport(Callback):
    """Write summary.csv, report.md and the plots into the sweep directory."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        from distillab.report import write_report

        sweep_dir = config.hydra.sweep.dir
        try:
            report = write_report(sweep_dir)
        except Exception as e:  # noqa: BLE001 - the sweep's results are safe; say why, go on
            log.error(
                f"distillab: sweep report failed ({type(e).__name__}: {e}); "
                f"run `distillab-compare {sweep_dir}` to retry"
            )
            return
        global LAST_REPORT
        LAST_REPORT = report
        failed = report.failed
        log.info(f"distillab: sweep report: {sweep_dir}/report.md ({len(report.jobs)} jobs)")
        if failed:
            names = ", ".join(f"{j.name} ({j.status})" for j in failed)
            log.warning(
                f"distillab: {len(failed)} of {len(report.jobs)} jobs did not finish: {names}"
            )


LAST_REPORT = None  # the report of the multirun that ended in this process
