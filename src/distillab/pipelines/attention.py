"""Attention heatmaps of a trained student (beside its teacher's, for a distilled one) and the
teacher-student alignment agreement; what `distillab-eval ckpt=PATH plots=true` runs."""

from __future__ import annotations

from pathlib import Path

import torch

from distillab.analysis.attention import mean_attention_js, plot_batch
from distillab.teachers import Teacher
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json


def attention_maps(
    model: torch.nn.Module,
    teacher: Teacher | None,
    dm,
    out_dir: Path,
    num_dialogues: int,
    ckpt: str,
) -> dict[str, float]:
    """Write `num_dialogues` heatmaps and `attention.json` into `out_dir`; returns the mean
    attention JS divergence against the teacher (`val/attention_js`) when there is one."""
    paths: list[Path] = []
    for batch in dm.val_dataloader():
        more, _ = plot_batch(
            model, batch, dm.tokenizer, out_dir, teacher, limit=num_dialogues - len(paths)
        )
        paths += more
        if len(paths) >= num_dialogues:
            break
    metrics: dict[str, float] = {}
    if teacher is not None:
        js = mean_attention_js(model, teacher, dm.val_dataloader())
        if js is not None:
            metrics["val/attention_js"] = js
    atomic_write_json(
        out_dir / "attention.json", {"ckpt": ckpt, "plots": [p.name for p in paths], **metrics}
    )
    shown = f"; JS divergence vs teacher {metrics['val/attention_js']:.3f}" if metrics else ""
    log.info(f"attention: {len(paths)} heatmaps -> {out_dir}{shown}")
    return metrics
