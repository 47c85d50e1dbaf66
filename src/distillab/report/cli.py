"""`distillab-compare SWEEP_DIR [--metric NAME]`: (re)write a sweep's summary.csv, report.md
and plots from its jobs' files, whenever asked (mid-sweep, after a failure, after new jobs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distillab.errors import DistillabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="distillab-compare",
        description="Summarise a multirun directory: summary.csv, report.md and PNG plots.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (outputs/multiruns/...)")
    parser.add_argument(
        "--metric",
        default=None,
        help="rank by this metric (default: the jobs' optimized_metric, e.g. val/ppl)",
    )
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"distillab-compare: error: {args.sweep_dir}: no such directory", file=sys.stderr)
        return 2
    from distillab.report import write_report  # matplotlib: after the arguments are checked

    try:
        report = write_report(args.sweep_dir, args.metric)
    except DistillabError as e:  # an optimized metric that does not declare its direction
        print(f"distillab-compare: error: {e}", file=sys.stderr)
        return 2
    if not report.jobs:
        print(
            f"distillab-compare: error: {args.sweep_dir}: no jobs (no */.hydra/overrides.yaml)",
            file=sys.stderr,
        )
        return 2
    bad = len(report.failed)
    print(
        f"distillab-compare: {len(report.jobs)} jobs ({bad} failed or incomplete) -> "
        + ", ".join(str(p) for p in report.files)
    )
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
