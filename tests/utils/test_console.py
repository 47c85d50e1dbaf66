"""The console: a run prints its plan, progress, figures and results path, not library noise,
and all of it reaches the run's log file."""

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from distillab.train import CONF_DIR
from distillab.utils.console import NOISY_WARNINGS, quiet_known_noise
from tests.conftest import TINY

NOISE = [
    "litlogger",
    "💡",
    "LeafSpec",
    "could not find the monitored key",
    "does not have many workers",
    "smaller than the logging interval",
    "GPU available",
    "TPU available",
    "Loading `train_dataloader`",
    "Restoring states from the checkpoint",
]


@pytest.mark.slow  # a command-line run: Python and torch start-up dominate
def test_tiny_run_prints_plan_progress_and_results_without_noise(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "distillab.train",
        "experiment=student",
        *TINY,
        "trainer.log_every_n_steps=50",  # more than an epoch's batches: Lightning would warn
        f"paths.output_root={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for noise in NOISE:
        assert noise not in out, noise
    assert proc.stderr.strip() == ""  # nothing went wrong, so nothing to warn about
    (run_dir,) = tmp_path.glob("runs/*/*")
    assert (run_dir / "metrics.json").is_file()
    lines = proc.stdout.splitlines()
    assert lines[0] == f"distillab: student: training Seq2Seq, 6 steps on cpu -> {run_dir}"
    assert lines[-1].startswith("done in ") and lines[-1].endswith(f"s: {run_dir}")
    assert "epoch 0 step 6 train: loss " in proc.stdout
    assert "evaluation of the current weights val: ppl " in proc.stdout
    assert "evaluation of the current weights test: ppl " in proc.stdout
    log = (run_dir / "train.log").read_text()
    for line in lines:  # everything the console shows, with timestamps
        assert f"] - {line}\n" in log, line


# what the Hydra job logging does, in a process of its own (it configures global logging)
ROUTING = textwrap.dedent(
    """
    import logging, logging.config, sys, warnings
    from omegaconf import OmegaConf
    from distillab.utils import console

    cfg = OmegaConf.load(sys.argv[1])
    cfg.handlers.file.filename = sys.argv[2]
    logging.config.dictConfig(OmegaConf.to_container(cfg, resolve=True))
    console.setup()
    console.log.info("plan line")
    console.log.info("progress line", extra={"console": False})
    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("GPU available: False")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("`Trainer.fit` stopped")
    warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
    warnings.warn("a warning about this run", UserWarning)
    console.log.error("distillab: error: bad")
    """
)


def test_logging_routes_info_to_stdout_warnings_to_stderr_all_to_file(tmp_path):
    conf = Path(CONF_DIR) / "hydra" / "job_logging" / "distillab.yaml"
    log_file = tmp_path / "train.log"
    proc = subprocess.run(
        [sys.executable, "-c", ROUTING, str(conf), str(log_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["plan line", "`Trainer.fit` stopped"]
    assert "a warning about this run" in proc.stderr and "distillab: error: bad" in proc.stderr
    assert "LeafSpec" not in proc.stderr and "plan line" not in proc.stderr
    log = log_file.read_text()
    for text in ["plan line", "progress line", "`Trainer.fit` stopped", "a warning about this run"]:
        assert text in log, text
    assert "GPU available" not in log and "LeafSpec" not in log


@pytest.mark.parametrize(
    "message",
    [
        "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`",
        "The 'train_dataloader' does not have many workers which may be a bottleneck.",
        "The number of training batches (7) is smaller than the logging interval Trainer(...)",
        "`ModelCheckpoint(monitor='val/ppl')` could not find the monitored key in the returned",
    ],
)
def test_known_noise_is_silenced_other_warnings_are_not(message):
    assert any(re.match(p, message) for p in NOISY_WARNINGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("Checkpoint directory /x exists and is not empty.", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["Checkpoint directory /x exists and is not empty."]


def test_submitits_sacct_warning_is_said_once(caplog):
    """On a cluster without accounting submitit warns at every status poll; once is enough."""
    import logging

    from distillab.utils.console import quiet_submitit

    quiet_submitit()
    quiet_submitit()  # idempotent
    log = logging.getLogger("submitit")
    with caplog.at_level(logging.WARNING, logger="submitit"):
        for n in range(1, 4):
            log.warning(f"Call #{n} - Bypassing sacct error boom, status may be inaccurate.")
        log.warning("something else")
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[0].startswith("Call #1 - Bypassing sacct error boom")
    assert said[1] == "something else"
