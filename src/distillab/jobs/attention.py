"""Attention heatmaps of a trained student (beside its teacher's, for a distilled one) and the
teacher-student alignment agreement; what `distillab-eval ckpt=PATH plots=true` runs.

`cfg` needs `ckpt` (a distillab checkpoint inside a run directory: `<run>/checkpoints/*.ckpt`,
whose `config.yaml` says how the data was built and which teacher was used); optional
`num_dialogues` (heatmaps written, default 4) and `plots_dir` (default `<run>/attention`).
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from distillab.analysis.attention import mean_attention_js, plot_batch
from distillab.errors import ConfigError
from distillab.jobs.common import JobResult
from distillab.modules.seq2seq import load_model
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json


def distilled(ckpt: str) -> bool:
    """Whether a teacher distilled this checkpoint (its module recorded the teachers' ids)."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    return "teacher_ids" in state.get("hyper_parameters", {})


def run(cfg: DictConfig) -> JobResult:
    ckpt = str(cfg.ckpt)
    if not Path(ckpt).is_file():
        raise ConfigError(f"ckpt={ckpt}: no such checkpoint file")
    from distillab.jobs.evaluate import run_config  # evaluate calls this module

    rcfg = OmegaConf.load(run_config(ckpt))
    run_dir = Path(ckpt).parent.parent
    out_dir = Path(cfg.get("plots_dir") or run_dir / "attention")
    n = int(cfg.get("num_dialogues") or 4)
    dm = instantiate(rcfg.data, conversation_bag=bool(rcfg.task.get("conversation_bag")))
    dm.load()
    model = load_model(ckpt)
    teacher = None
    if distilled(ckpt):  # the run's teacher, rebuilt from its config (registry, path, HF)
        from distillab.jobs.teacher import build_teacher

        teacher = build_teacher(rcfg.teacher, rcfg, dm)
    paths: list[Path] = []
    for batch in dm.val_dataloader():
        more, _ = plot_batch(model, batch, dm.tokenizer, out_dir, teacher, limit=n - len(paths))
        paths += more
        if len(paths) >= n:
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
    return JobResult(metrics, out_dir, ckpt)
