"""Does the teacher-output cache cost quality? Distil the quickstart student twice, with the
teacher run online and with its cached top-k, same seed, budget and batches; compare.

    python benchmarks/cache_quality.py [--output-root outputs] [--topk 32] [--json FILE]

The teacher comes from the registry under --output-root (trained there first if absent, as the
quickstart does), so after a quickstart this only trains the two students.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from distillab.train import CONF_DIR, run_job


def distil(mode: str, root: Path, topk: int, extra: list[str]) -> dict:
    overrides = [
        "experiment=quickstart",
        "job=distillab.jobs.distill.run",
        f"distill.teacher_outputs={mode}",
        f"distill.topk={topk}",
        *extra,
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_root = str(root)
        cfg.paths.output_dir = str(root / "bench_cache_quality" / f"{mode}_{time.time_ns()}")
    start = time.perf_counter()
    metrics = run_job(cfg)
    return {
        "val/ppl": metrics["val/ppl"],
        "time/train_s": metrics["time/train_s"],
        "wall_s": time.perf_counter() - start,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--topk", type=int, default=32)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.max_steps=200"
    )
    args = ap.parse_args()
    root = Path(args.output_root).resolve()
    res = {mode: distil(mode, root, args.topk, args.overrides) for mode in ("online", "cached")}
    rel = (res["cached"]["val/ppl"] - res["online"]["val/ppl"]) / res["online"]["val/ppl"]
    print("| teacher outputs | val ppl | train s | wall s (incl. cache build) |")
    print("|---|---|---|---|")
    for mode, r in res.items():
        print(f"| {mode} | {r['val/ppl']:.2f} | {r['time/train_s']:.0f} | {r['wall_s']:.0f} |")
    print(
        f"\ncached vs online val ppl: {100 * rel:+.2f}% (target: within 2%) -> "
        f"{'met' if abs(rel) <= 0.02 else 'NOT met'}"
    )
    if args.json:
        out = {f"{k}.{mode}": v for mode, r in res.items() for k, v in r.items()}
        out["ratio.cached_over_online_val_ppl"] = 1 + rel
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
