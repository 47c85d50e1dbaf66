"""Does the teacher-output cache cost quality? Distil the quickstart student twice, with the
teacher run online and with its cached top-k (plus tail draws), same seed, budget and batches;
compare. With several seeds, each seed is one such pair.

    python benchmarks/cache_quality.py [--output-root outputs] [--topk 32] [--tail-samples 32]
        [--seeds 1 2] [--json FILE]

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


def distil(mode: str, root: Path, seed: int, args: argparse.Namespace) -> dict:
    overrides = [
        "experiment=quickstart",
        "job=distillab.jobs.distill.run",
        f"seed={seed}",
        f"distill.teacher_outputs={mode}",
        f"distill.topk={args.topk}",
        f"distill.tail_samples={args.tail_samples}",
        *args.overrides,
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
    ap.add_argument("--tail-samples", type=int, default=32)
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[42],
        help="one pair per seed (42: the quickstart's)",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.max_steps=200"
    )
    args = ap.parse_args()
    root = Path(args.output_root).resolve()
    res = {
        (seed, mode): distil(mode, root, seed, args)
        for seed in args.seeds
        for mode in ("online", "cached")
    }
    rel = {
        seed: res[seed, "cached"]["val/ppl"] / res[seed, "online"]["val/ppl"] - 1
        for seed in args.seeds
    }
    print(f"cache: top-{args.topk} + {args.tail_samples} tail draws per target token\n")
    print("| seed | teacher outputs | val ppl | train s | wall s (incl. cache build) |")
    print("|---|---|---|---|---|")
    for (seed, mode), r in res.items():
        print(
            f"| {seed} | {mode} | {r['val/ppl']:.2f} | {r['time/train_s']:.0f} "
            f"| {r['wall_s']:.0f} |"
        )
    mean = sum(rel.values()) / len(rel)
    print(
        "\ncached vs online val ppl: "
        + ", ".join(f"seed {s}: {100 * v:+.2f}%" for s, v in rel.items())
        + f"; mean {100 * mean:+.2f}% (target: within 2%) -> "
        + ("met" if abs(mean) <= 0.02 else "NOT met")
    )
    if args.json:
        out = {f"{k}.{mode}.seed{seed}": v for (seed, mode), r in res.items() for k, v in r.items()}
        out.update({f"ratio.cached_over_online_val_ppl.seed{s}": 1 + v for s, v in rel.items()})
        out["ratio.cached_over_online_val_ppl"] = 1 + mean
        out["meta.topk"], out["meta.tail_samples"] = args.topk, args.tail_samples
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
