"""The main job: teacher, a student from scratch and a distilled student of the same size,
trained with the same seed and budget, evaluated on the same sets, compared in one table.
The data is read and the teacher resolved once, for both students."""

from __future__ import annotations

from distillab.compose import Run
from distillab.pipelines.compare import compare
from distillab.pipelines.fit import JobResult, fit_and_evaluate


def run(r: Run) -> JobResult:
    r.start("comparing")
    teacher = r.teacher  # trained into the registry the first time
    scratch = r.gold_module()
    students = {
        "student_scratch": fit_and_evaluate(
            scratch, r.data, r.stage(r.data, "student_scratch", "scratch")
        )
    }
    distilled = r.distillation_module()
    students["student_distilled"] = fit_and_evaluate(
        distilled, r.distill_data, r.stage(r.distill_data, "student_distilled", "distilled")
    )
    return compare(r.run_dir, teacher, r.teacher_metrics(), students, r.data, r.heads)
