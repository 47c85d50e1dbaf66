"""The quickstart's comparison: the teacher and two students on the same validation and test
sets, their agreement with the teacher, the task heads' baselines, in one table."""

from __future__ import annotations

from pathlib import Path

import torch

from distillab.analysis.attention import mean_attention_js
from distillab.checkpoint import load_model
from distillab.pipelines.baselines import head_baselines
from distillab.pipelines.fit import JobResult
from distillab.teachers import Teacher
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, atomic_write_text

ROLES = ("teacher", "student_scratch", "student_distilled")
STUDENTS = ("student_scratch", "student_distilled")
BASELINES = ("baseline_chance", "baseline_majority")  # task heads only (task=multi)
COLUMNS = [  # (header, metrics key, format)
    ("params", "model/params", "{:,.0f}"),
    ("val ppl", "val/ppl", "{:.1f}"),
    ("test ppl", "test/ppl", "{:.1f}"),
    ("val BLEU-4", "val/bleu", "{:.4f}"),
    ("val ROUGE-L", "val/rougeL", "{:.4f}"),
    ("val distinct-2", "val/distinct2", "{:.3f}"),
    ("agreement w/ teacher", "val/teacher_agreement", "{:.3f}"),
    ("attention JS w/ teacher", "val/attention_js", "{:.3f}"),
    ("val topic acc", "val/topic_acc", "{:.3f}"),
    ("val topic F1", "val/topic_f1", "{:.3f}"),
    ("val rating MAE", "val/rating_mae", "{:.3f}"),
    ("train s", "time/train_s", "{:.0f}"),
]


@torch.no_grad()
def teacher_agreement(students: list[torch.nn.Module], teacher: Teacher, loader) -> list:
    """Per student, the share of gold target positions where its top-1 token equals the
    teacher's (all teacher-forced on the same gold prefix); one teacher pass for all."""
    agree, total = [0] * len(students), 0
    for b in loader:
        t = teacher.outputs(b).logits[0].argmax(-1)
        for i, student in enumerate(students):
            out = student.forward_batch(b)
            agree[i] += int(((out.logits.argmax(-1) == t) & b.tgt_mask).sum())
        total += int(b.tgt_mask.sum())
    return [a / max(total, 1) for a in agree]


def markdown_table(results: dict[str, dict], note: str) -> str:
    head = "| model | " + " | ".join(c[0] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for role in [*ROLES, *BASELINES]:
        if role not in results:
            continue
        m = results[role]
        cells = [fmt.format(m[key]) if key in m else "-" for _, key, fmt in COLUMNS]
        rows.append(f"| {role} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n" + note + "\n"


def regime_note(info: dict, baselines: bool) -> str:
    """What the table's rows saw, from the data's description."""
    note = (
        f"Regime: students see {info['train_examples_used']:,} labelled training pairs "
        f"(data.max_train_examples); the teacher was trained on the full training split "
        f"({info['splits']['train']['examples']:,} pairs). Same seed, steps and batches for "
        f"both students; val/test: {info['splits']['val']['examples']:,} / "
        f"{info['splits']['test']['examples']:,} pairs. Agreement: share of gold positions "
        "where a student's top-1 token equals the teacher's. Attention JS: mean Jensen-Shannon "
        "divergence (bits, 0 = same alignment) between a student's and the teacher's "
        "attention rows on gold responses."
    )
    if baselines:
        note += (
            " Baselines (task heads): chance = a uniformly random topic / rating; majority ="
            " the training split's most frequent topic / median rating."
        )
    return note


def compare(
    run_dir: Path,
    teacher: Teacher,
    teacher_metrics: dict,
    students: dict[str, JobResult],
    dm,
    heads: tuple[int, bool],
) -> JobResult:
    """Write `comparison.json`, `comparison.md` and the summary `metrics.json` (what a sweep
    report ranks by) into `run_dir`."""
    results = {role: dict(students[role].metrics) for role in STUDENTS}
    results["teacher"] = {**teacher_metrics, "checkpoint": teacher.source}
    models = [load_model(students[role].checkpoint) for role in STUDENTS]
    agreement = teacher_agreement(models, teacher, dm.val_dataloader())
    for role, value, model in zip(STUDENTS, agreement, models, strict=True):
        results[role]["val/teacher_agreement"] = value
        js = mean_attention_js(model, teacher, dm.val_dataloader())
        if js is not None:
            results[role]["val/attention_js"] = js
    results = {role: results[role] for role in ROLES}
    results.update(head_baselines(dm, *heads))
    table = markdown_table(
        results, regime_note(dm.describe(), any(b in results for b in BASELINES))
    )
    atomic_write_json(run_dir / "comparison.json", results)
    atomic_write_text(run_dir / "comparison.md", table)
    log.info("\n" + table)
    scratch, distilled = results["student_scratch"], results["student_distilled"]
    summary = {
        "val/ppl": distilled["val/ppl"],
        "val/ppl_gain": scratch["val/ppl"] - distilled["val/ppl"],
    }
    atomic_write_json(run_dir / "metrics.json", summary)
    return JobResult(summary, run_dir, students["student_distilled"].checkpoint)
