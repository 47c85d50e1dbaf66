"""Per-job overhead of a sweep: what every job of a multirun pays before its first training
step, against the wall time of a quickstart-size student job (target: under 15%).

    python benchmarks/sweep_overhead.py [--output-root DIR] [--jobs 3] [--student-steps 800]
        [--teacher-steps 20] [--json FILE] [overrides ...]

Each measured job is a fresh Python process (a submitit or SLURM job is one; joblib reuses its
worker processes, so there imports are paid once per worker, not per job), started with the
caches warm, as every job after a sweep's first finds them: the encoded data and tokenizer in
`paths.cache_dir`, the teacher in the registry. Phases, timed inside the process:

- process start: interpreter start-up until the script's first line (parent-side clock);
- imports: torch, Lightning, Hydra, distillab (the jobs and the Hydra app);
- compose + validate: the Hydra config of the job and every config check;
- data from cache: `instantiate(cfg.data)` and `load()` (encoded splits, tokenizer);
- teacher lookup: the registry entry (key hash, lock, registry.json) and loading the checkpoint.

The student job is `experiment=quickstart job=distillab.jobs.train.run` (the quickstart's
scratch student: same data, size and 800 steps), run once through `distillab-train` in its own
process; its wall time (`time` around the process) is the denominator. The registry teacher has
the quickstart teacher's size but `--teacher-steps` steps (loading it costs the same; training
it 800 steps would add minutes to the benchmark).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUICKSTART = ["experiment=quickstart", "threads=2"]


def child(root: str, overrides: list[str]) -> None:
    """One job's start-up, phase by phase; prints the timings as JSON: wall seconds per phase
    and, as `cpu.<phase>`, this process's CPU seconds (on a loaded machine the wall time
    includes waiting for a core; the CPU time does not)."""
    t = {"imported_at": time.time()}
    start, cpu = time.perf_counter(), time.process_time()

    def lap(phase: str) -> None:
        nonlocal start, cpu
        t[phase], t[f"cpu.{phase}"] = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()

    import pytorch_lightning  # noqa: F401
    import torch  # noqa: F401
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from distillab.compose import compose as compose_run
    from distillab.jobs import distill  # noqa: F401
    from distillab.train import CONF_DIR
    from distillab.validate import validate

    lap("imports")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train", overrides=[*QUICKSTART, "job=distillab.jobs.distill.run", *overrides]
        )
    with open_dict(cfg):
        cfg.paths.output_root = root
        cfg.paths.output_dir = str(Path(root) / "bench_overhead" / str(time.time_ns()))
    validate(cfg)
    lap("compose + validate")
    run = compose_run(cfg)
    run.data  # noqa: B018 - read (from the cache) here, timed
    lap("data from cache")
    run.teacher  # noqa: B018 - the registry lookup, timed
    lap("teacher lookup")
    print("TIMINGS " + json.dumps(t))


def run_child(root: Path, overrides: list[str]) -> dict[str, float]:
    started = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--output-root", str(root), *overrides],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("TIMINGS ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"overhead job failed:\n{proc.stderr[-3000:]}")
    t = json.loads(lines[-1][len("TIMINGS ") :])
    t["process start"] = t.pop("imported_at") - started
    return t


def student_job(root: Path, steps: int, overrides: list[str]) -> tuple[float, dict]:
    """Wall time of one quickstart-size student job through distillab-train, and its metrics."""
    cmd = [sys.executable, "-m", "distillab.train", *QUICKSTART, "job=distillab.jobs.train.run"]
    cmd += ["experiment_name=student", f"trainer.max_steps={steps}", f"paths.output_root={root}"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, *overrides], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"student job failed:\n{proc.stderr[-3000:]}")
    (metrics,) = sorted(root.glob("runs/*/*_student_*/metrics.json"))[-1:]
    return wall, json.loads(metrics.read_text())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--output-root", default="outputs/bench_sweep_overhead")
    ap.add_argument("--jobs", type=int, default=3, help="fresh-process job starts measured")
    ap.add_argument(
        "--student-steps", type=int, default=800, help="0: no student job (see --reference-wall)"
    )
    ap.add_argument("--teacher-steps", type=int, default=20)
    ap.add_argument(
        "--reference-wall",
        type=float,
        default=math.nan,
        help="with --student-steps 0: the student job's wall time (s) measured elsewhere",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args(argv)
    root = Path(args.output_root).resolve()
    teacher = [f"teacher.train.trainer.max_steps={args.teacher_steps}", *args.overrides]
    if args.child:
        child(str(root), teacher)
        return {}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"warming the caches (data, registry teacher of {args.teacher_steps} steps) ...")
    run_child(root, teacher)  # the first job of a sweep: builds what the others reuse
    runs = []
    for _ in range(args.jobs):
        runs.append(run_child(root, teacher))
        print("job start: " + json.dumps({k: round(v, 3) for k, v in runs[-1].items()}))
    if args.student_steps > 0:
        print(f"student job ({args.student_steps} steps) ...")
        wall, metrics = student_job(root, args.student_steps, args.overrides)
    else:  # --reference-wall: a student job's wall time measured elsewhere
        wall, metrics = args.reference_wall, {"time/train_s": math.nan, "val/ppl": math.nan}
    phases = ["process start", "imports", "compose + validate", "data from cache", "teacher lookup"]
    med = {p: statistics.median(r[p] for r in runs) for p in phases}
    cpu = {p: statistics.median(r.get(f"cpu.{p}", math.nan) for r in runs) for p in phases[1:]}
    total = statistics.median(sum(r[p] for p in phases) for r in runs)
    load = os.getloadavg()[0]
    print(f"\nper-job overhead, median of {args.jobs} fresh-process job starts (caches warm)")
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} cores\n")
    print("| phase | wall s | CPU s | share of the student job's wall time |")
    print("|---|---|---|---|")
    for p in phases:
        print(f"| {p} | {med[p]:.2f} | {cpu.get(p, math.nan):.2f} | {med[p] / wall:.1%} |")
    print(f"| **total** | **{total:.2f}** | | **{total / wall:.1%}** (target < 15%) |")
    print(
        f"\nstudent job (quickstart size, {args.student_steps} steps, distillab-train in its own "
        f"process): {wall:.1f} s wall, of which training {metrics['time/train_s']:.1f} s; "
        f"val ppl {metrics['val/ppl']:.1f}"
    )
    result = {
        **{f"overhead_s.{p}": med[p] for p in phases},
        **{f"cpu_s.{p}": v for p, v in cpu.items()},
        "overhead_s.total": total,
        "load_average_1min": load,
        "student_job.wall_s": wall,
        "student_job.train_s": metrics["time/train_s"],
        "ratio.overhead_over_student_job": total / wall,
        "rounds": runs,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
