"""The main job: teacher, a student from scratch and a distilled student of the same size,
trained with the same seed and budget, evaluated on the same sets, compared in one table."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from distillab.analysis.attention import mean_attention_js
from distillab.jobs import distill, train
from distillab.jobs.baselines import head_baselines
from distillab.jobs.common import JobResult, build_trainer, evaluate, start_run
from distillab.jobs.heads import task_heads
from distillab.jobs.teacher import AUTO, build_teacher, registry_entry
from distillab.modules.seq2seq import load_model
from distillab.teachers import CheckpointTeacher, Teacher
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, atomic_write_text

ROLES = ("teacher", "student_scratch", "student_distilled")
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
        args = (b.src, b.src_mask, b.tgt_in)
        t = teacher.outputs(b).logits[0].argmax(-1)
        for i, student in enumerate(students):
            out = student(*args, conv=b.conversation)
            agree[i] += int(((out.logits.argmax(-1) == t) & b.tgt_mask).sum())
        total += int(b.tgt_mask.sum())
    return [a / max(total, 1) for a in agree]


def sub_config(cfg: DictConfig, out_dir: Path, name: str) -> DictConfig:
    sub = OmegaConf.merge(cfg, {"experiment_name": name})
    with open_dict(sub):
        sub.paths.output_dir = str(out_dir)
    return sub


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


def run(cfg: DictConfig) -> JobResult:
    run_dir, dm = start_run(cfg)
    teacher = build_teacher(cfg.teacher, cfg, dm)  # trained into the registry the first time
    runs = {
        "student_scratch": train.run(sub_config(cfg, run_dir / "student_scratch", "scratch")),
        "student_distilled": distill.run(
            sub_config(cfg, run_dir / "student_distilled", "distilled")
        ),
    }
    results = {role: dict(r.metrics) for role, r in runs.items()}
    # the teacher on the same validation and test sets as the students: a registry teacher
    # was evaluated on them when it was trained (its key includes this data's fingerprint)
    if cfg.teacher.get("ckpt") == AUTO:
        metrics = registry_entry(cfg, dm)["metrics"]
    elif isinstance(teacher, CheckpointTeacher):  # evaluated like the students
        trainer = build_trainer(sub_config(cfg, run_dir / "teacher_eval", "teacher"), run_dir, [])
        teacher.module.tokenizer = dm.tokenizer
        metrics = evaluate(trainer, teacher.module, dm)
    else:  # e.g. a Hugging Face teacher: no Lightning module to evaluate
        metrics = {}
    results["teacher"] = {**metrics, "checkpoint": teacher.source}
    students = ("student_scratch", "student_distilled")
    models = [load_model(runs[role].checkpoint) for role in students]
    agreement = teacher_agreement(models, teacher, dm.val_dataloader())
    for role, value in zip(students, agreement, strict=True):
        results[role]["val/teacher_agreement"] = value
    for role, model in zip(students, models, strict=True):
        js = mean_attention_js(model, teacher, dm.val_dataloader())
        if js is not None:
            results[role]["val/attention_js"] = js
    results = {role: results[role] for role in ROLES}
    results.update(head_baselines(dm, *task_heads(cfg, dm)))
    info = dm.describe()
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
    if any(b in results for b in BASELINES):
        note += (
            " Baselines (task heads): chance = a uniformly random topic / rating; majority ="
            " the training split's most frequent topic / median rating."
        )
    table = markdown_table(results, note)
    atomic_write_json(run_dir / "comparison.json", results)
    atomic_write_text(run_dir / "comparison.md", table)
    log.info("\n" + table)
    scratch, distilled = results["student_scratch"], results["student_distilled"]
    summary = {
        "val/ppl": distilled["val/ppl"],
        "val/ppl_gain": scratch["val/ppl"] - distilled["val/ppl"],
    }
    atomic_write_json(run_dir / "metrics.json", summary)  # what a sweep report ranks by
    return JobResult(summary, run_dir, runs["student_distilled"].checkpoint)
