"""Jobs: what one invocation does, chosen by `job=` (a dotted path to a function of a composed
`Run`, see `distillab.compose`). Each is a flat task: take built objects from the run, hand
them to the pipelines.

- `distillab.jobs.train.run`: train one model on gold responses (teacher or student).
- `distillab.jobs.distill.run`: distil a student from the resolved teacher(s).
- `distillab.jobs.quickstart.run`: teacher, scratch student and distilled student, compared.
- `distillab.jobs.evaluate.run`: `distillab-eval` (a composed `EvalRun`).
"""
