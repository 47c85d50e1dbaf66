"""`distillab-eval`: evaluate a checkpoint after training; compress and export it with
`compress=...`; attention maps with `plots=true`."""

from __future__ import annotations

from distillab.compose.evaluation import EvalRun
from distillab.pipelines.attention import attention_maps
from distillab.pipelines.fit import JobResult, eval_trainer, evaluate
from distillab.utils.io import atomic_write_json


def run(r: EvalRun) -> JobResult:
    r.start("evaluating")
    module, dm = r.module, r.data
    metrics = evaluate(eval_trainer(r.run_dir), module, dm)
    metrics["model/params"] = sum(p.numel() for p in module.model.parameters())
    if r.plots:
        metrics.update(
            attention_maps(
                module.model, r.teacher, dm, r.run_dir / "attention", r.num_dialogues, r.ckpt
            )
        )
    atomic_write_json(r.run_dir / "metrics.json", metrics)
    if r.compression is not None:
        r.compression.run(dm, module, r.ckpt, metrics)
    return JobResult(metrics, r.run_dir, r.ckpt)
