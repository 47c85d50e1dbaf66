"""Interrupt-and-resume at a size larger than the tests: a run SIGTERMed mid-training and
resumed with `resume=RUN_DIR` against the same run uninterrupted. Prints a table.

    python benchmarks/resume.py --steps 600 --interrupt-after 200 data.max_examples=3000

Trailing arguments are Hydra overrides for both runs (default: the student of the quickstart
data size). Everything goes to a temporary directory unless --root is given.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(args: list[str], root: Path) -> list[str]:
    return [sys.executable, "-m", "distillab.train", f"paths.output_root={root}", *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def interrupted_then_resumed(args: list[str], root: Path, after: int) -> tuple[Path, float]:
    """SIGTERM once the log shows step `after` (PlainProgress logs every 50 steps), resume."""
    t0 = time.time()
    proc = subprocess.Popen(
        cli(args, root), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while proc.poll() is None:
        logs = list(root.glob("runs/*/*/train.log"))
        if logs and f"step {after} train" in logs[0].read_text():
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.5)
    if proc.wait() != 128 + signal.SIGTERM:
        raise SystemExit(
            f"the run was not interrupted (exit {proc.returncode}); lower --interrupt-after"
        )
    (run_dir,) = root.glob("runs/*/*")
    subprocess.run(cli([f"resume={run_dir}"], root), env=env(), check=True, capture_output=True)
    return run_dir, time.time() - t0


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--interrupt-after", type=int, default=200, help="a multiple of 50")
    p.add_argument("--experiment", default="student")
    p.add_argument("--root", type=Path, default=None)
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    root = a.root or Path(tempfile.mkdtemp(prefix="distillab-resume-"))
    args = [f"experiment={a.experiment}", f"trainer.max_steps={a.steps}", *a.overrides]

    t0 = time.time()
    subprocess.run(cli(args, root / "whole"), env=env(), check=True, capture_output=True)
    whole_s = time.time() - t0
    (whole_dir,) = (root / "whole").glob("runs/*/*")
    resumed_dir, resumed_s = interrupted_then_resumed(args, root / "resumed", a.interrupt_after)

    whole = json.loads((whole_dir / "metrics.json").read_text())
    resumed = json.loads((resumed_dir / "metrics.json").read_text())
    print("| run | final step | val/ppl | test/ppl | wall s |")
    print("|---|---|---|---|---|")
    for name, m, s in (
        ("uninterrupted", whole, whole_s),
        (f"SIGTERM at ~{a.interrupt_after}, resumed", resumed, resumed_s),
    ):
        print(
            f"| {name} | {m['trainer/global_step']} | {m['val/ppl']:.3f} | {m['test/ppl']:.3f} | {s:.0f} |"
        )
    print(f"\nval/ppl relative difference: {resumed['val/ppl'] / whole['val/ppl'] - 1:+.3%}")


if __name__ == "__main__":
    main()
