"""Which distillation objective wins at quickstart size: scratch, forward KL, reverse KL,
JSD(0.5), TVD and on-policy (lmbda 0.5), same seed, budget and batches, with the task heads
(`task=multi`: topic and rating, beside their baselines); then single- vs multi-task students
distilled from the same teacher.

    python benchmarks/objectives.py [--output-root DIR] [--json FILE] [--skip-single]
        [overrides ...]

Each variant is one `python -m distillab.train experiment=quickstart task=multi ...` run in its own
process (the teacher is trained once, into the registry under `--output-root`, and reused by
the rest). Every variant uses `distill.teacher_outputs=online`: cached teacher outputs only
estimate the forward KL (and cannot score on-policy samples), so the comparison keeps one
teacher path for all. The scratch student of every run is the same model (same seed, steps
and batches); the table takes it from the first run and says if another run's differs. The
single-task run (`task=single`) takes that teacher's checkpoint (`teacher.ckpt`), so both
student kinds learn from one teacher. Trailing overrides go to every run (e.g. tiny sizes
for a smoke test).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS = {  # name -> overrides on top of experiment=quickstart
    "forward_kl": ["distill.objective.divergence=forward_kl"],
    "onpolicy_0.5": ["distill=onpolicy", "distill.onpolicy.lmbda=0.5"],
    "reverse_kl": ["distill.objective.divergence=reverse_kl"],
    "jsd_0.5": ["distill.objective.divergence=jsd", "distill.objective.jsd_beta=0.5"],
    "tvd": ["distill.objective.divergence=tvd"],
}
COLUMNS = [  # (header, metrics key, format)
    ("val ppl", "val/ppl", "{:.1f}"),
    ("test ppl", "test/ppl", "{:.1f}"),
    ("val ROUGE-L", "val/rougeL", "{:.4f}"),
    ("val distinct-2", "val/distinct2", "{:.3f}"),
    ("agreement w/ teacher", "val/teacher_agreement", "{:.3f}"),
    ("val topic acc", "val/topic_acc", "{:.3f}"),
    ("val rating MAE", "val/rating_mae", "{:.3f}"),
    ("train s", "time/train_s", "{:.0f}"),
]


def run(name: str, overrides: list[str], root: Path) -> dict:
    """One quickstart run in its own process; its comparison.json."""
    out = root / "runs" / name
    if not (out / "comparison.json").is_file():
        cmd = [
            sys.executable,
            "-m",
            "distillab.train",
            "experiment=quickstart",
            "distill.teacher_outputs=online",
            # the heads' KD held at T=1 (the word-level temperature) in every row: the table
            # compares word-level objectives; the first rows were measured at this setting
            "distill.objective.head_temperature=1",
            *overrides,
            f"paths.output_root={root}",
            f"hydra.run.dir={out}",
        ]
        print("$", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    return json.loads((out / "comparison.json").read_text())


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| model | " + " | ".join(c[0] for c in COLUMNS) + " |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, m in rows.items():
        cells = [fmt.format(m[key]) if key in m else "-" for _, key, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output-root", default="outputs/bench_objectives")
    ap.add_argument("--json")
    ap.add_argument("--skip-single", action="store_true", help="leave out the task=single run")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    root = Path(args.output_root).resolve()
    results = {
        name: run(name, ["task=multi", *extra, *args.overrides], root)
        for name, extra in VARIANTS.items()
    }
    first = next(iter(results.values()))
    rows = {"teacher": first["teacher"], "scratch": first["student_scratch"]}
    for name, r in results.items():
        same = r["student_scratch"]["val/ppl"] == first["student_scratch"]["val/ppl"]
        rows[name] = r["student_distilled"]
        if not same:
            print(f"warning: {name}'s scratch student differs from the first run's", flush=True)
    print("\n## Objectives (task=multi)\n\n" + table(rows), flush=True)
    report = {"objectives": rows}
    if not args.skip_single:
        ckpt = first["teacher"]["checkpoint"]
        single = run(
            "single_forward_kl", ["task=single", f"teacher.ckpt={ckpt}", *args.overrides], root
        )
        tasks = {
            "scratch (single)": single["student_scratch"],
            "scratch (multi)": first["student_scratch"],
            "forward_kl (single)": single["student_distilled"],
            "forward_kl (multi)": results["forward_kl"]["student_distilled"],
            "baseline chance": first["baseline_chance"],
            "baseline majority": first["baseline_majority"],
        }
        print("\n## Single- vs multi-task students\n\n" + table(tasks), flush=True)
        report["tasks"] = tasks
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
