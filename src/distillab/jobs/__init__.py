"""Jobs: what one `distillab-train` invocation does, chosen by `job=` (a dotted path).

- `distillab.jobs.train.run`: train one model on gold responses (teacher or student).
- `distillab.jobs.distill.run`: resolve the teacher(s), then distil a student.
- `distillab.jobs.quickstart.run`: teacher, scratch student and distilled student, compared.
"""
