"""The compression step after training (or in ``distillab-eval``): prune, fine-tune, quantize,
export, measure; writes ``compression.json`` beside ``metrics.json``.

The step starts from the job's checkpoint (best by the monitored metric, else the last); a
schedule that ran during training has already pruned it, and one magnitude step brings it to
``compress.sparsity`` if that checkpoint predates the schedule's end.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from distillab.compress.callback import GradualPruning
from distillab.compress.measure import median_ms, param_counts, serialized_bytes
from distillab.compress.pruning import fold, fold_state_dict, prunable
from distillab.compress.quantize import quantize_int8
from distillab.data.batching import collate
from distillab.decoding import Greedy
from distillab.modules.seq2seq import build_model
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json

GREEDY = Greedy()


def enabled(cfg: DictConfig) -> bool:
    c = cfg.get("compress")
    return bool(c) and bool(c.prune or c.quantize or c.export)


def pruner_of(c: DictConfig) -> Any:
    return instantiate(c.pruners[c.mode])


def training_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The gradual-pruning callback of a schedule that runs during training (none else)."""
    c = cfg.get("compress")
    if not c or not c.prune or c.schedule is None or c.finetune_steps > 0:
        return []
    s = c.schedule
    return [GradualPruning(pruner_of(c), c.sparsity, s.start_step, s.end_step, s.frequency)]


def load_checkpoint_model(ckpt: str) -> tuple[nn.Module, dict]:
    """(the network of a distillab checkpoint with masks folded, the checkpoint dict)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    model = build_model(state["hyper_parameters"])
    weights = {k[6:]: v for k, v in state["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(fold_state_dict(weights))
    return model.eval(), state


def save_checkpoint(state: dict, model: nn.Module, path: Path) -> None:
    """A checkpoint of ``model`` in the original's format, its model config rewritten to the
    new sizes (``load_model`` and ``Seq2SeqModule.load_from_checkpoint`` read it)."""
    out = {k: v for k, v in state.items() if k not in ("optimizer_states", "lr_schedulers")}
    hp = copy.deepcopy(dict(state["hyper_parameters"]))
    hp["model"] = {**dict(hp["model"]), "hidden_size": int(model.hidden_size)}
    out["hyper_parameters"] = hp
    rest = {k: v for k, v in state["state_dict"].items() if not k.startswith("model.")}
    out["state_dict"] = {**rest, **{f"model.{k}": v for k, v in model.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)


def fixed_inputs(dm, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` validation contexts in their fixed order, one at a time, unpadded."""
    ids = dict(pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id)
    loader = DataLoader(dm.datasets["val"], 1, collate_fn=partial(collate, **ids))
    out = []
    for i, b in enumerate(loader):
        if i == n:
            break
        out.append((b.src, b.src_mask))
    return out


def token_agreement(a: list[np.ndarray], b: list[np.ndarray], pad_id: int) -> float:
    """Share of positions (where either decode has a token) on which two decodes agree."""
    same = total = 0
    for x, y in zip(a, b, strict=True):
        n = max(len(x), len(y))
        x = np.pad(x, (0, n - len(x)), constant_values=pad_id)
        y = np.pad(y, (0, n - len(y)), constant_values=pad_id)
        real = (x != pad_id) | (y != pad_id)
        same += int(((x == y) & real).sum())
        total += int(real.sum())
    return same / max(total, 1)


def finetune(
    cfg: DictConfig, dm, module: pl.LightningModule, model: nn.Module, pruner
) -> nn.Module:
    """Prune ``model`` inside ``module`` while training it ``compress.finetune_steps`` more
    steps (the job's objective, teachers included): on the schedule, or one step to the target
    and fixed masks. No checkpoints or validation."""
    c = cfg.compress
    s = c.schedule
    start, end, freq = (s.start_step, s.end_step, s.frequency) if s is not None else (0, 0, 1)
    module.model = model.train()
    trainer = instantiate(
        cfg.trainer,
        max_steps=int(c.finetune_steps),
        max_epochs=-1,
        callbacks=[GradualPruning(pruner, float(c.sparsity), start, end, freq)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=str(Path(cfg.paths.output_dir) / "finetune"),
    )
    log.info(f"distillab: compress: fine-tuning {c.finetune_steps} steps while pruning")
    trainer.fit(module, datamodule=dm)
    return fold(module.model).eval()


def eval_trainer(cfg: DictConfig) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(cfg.paths.output_dir),
    )


def quality(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def compress_checkpoint(
    cfg: DictConfig, dm, module: pl.LightningModule, ckpt: str, metrics_before: dict
) -> dict[str, Any]:
    """Compress the model of ``ckpt`` as ``cfg.compress`` says, export it, measure it, write
    ``compression.json`` (and ``compressed/model.ckpt``, ``export/``) in the run directory."""
    from distillab.export.onnx import export_model, export_settings
    from distillab.export.runtime import OnnxSeq2Seq

    c = cfg.compress
    run_dir = Path(cfg.paths.output_dir)
    before, state = load_checkpoint_model(ckpt)
    hp = state["hyper_parameters"]
    compressed = copy.deepcopy(before)
    embeddings = False
    if c.prune:
        pruner = pruner_of(c)
        embeddings = bool(getattr(pruner, "embeddings", False))
        if c.finetune_steps > 0:
            compressed = finetune(cfg, dm, module, compressed, pruner)
        else:
            compressed = fold(pruner.prune(compressed, float(c.sparsity))).eval()
    save_checkpoint(state, compressed, run_dir / "compressed" / "model.ckpt")
    int8 = quantize_int8(compressed) if c.quantize else None
    deployed_eager = int8 if int8 is not None else compressed

    # sparsity over the pruned tensors: zeros and removed weights over the original count
    old = {q: getattr(m, n).numel() for m, n, q in prunable(before, embeddings)}
    kept = {q: int((getattr(m, n) != 0).sum()) for m, n, q in prunable(compressed, embeddings)}
    by_layer = {q: 1.0 - kept.get(q, 0) / n for q, n in old.items()}
    sparsity = 1.0 - sum(kept.values()) / max(sum(old.values()), 1)

    threads = torch.get_num_threads()
    inputs = fixed_inputs(dm, int(c.eval_inputs))
    max_len, bos, pad = int(hp["max_decode_len"]), int(hp["bos_id"]), int(hp["pad_id"])

    def eager(model):
        return lambda s, m: GREEDY(model, s, m, bos_id=bos, eos_id=-1, max_len=max_len)

    latency = {
        "latency_ms_fp32": median_ms(eager(before), inputs),
        "latency_ms_eager_int8": median_ms(eager(int8), inputs) if int8 is not None else None,
        "latency_ms_onnx_fp32": None,
        "latency_ms_onnx_int8": None,
    }
    agreement = {"export_agreement_fp32": None, "export_agreement_int8": None}
    if c.export:
        out = export_model(
            compressed, run_dir / "export", dm.tokenizer, export_settings(dm, max_len)
        )
        eos = int(hp["eos_id"])
        ref = [
            GREEDY(compressed, s, m, bos_id=bos, eos_id=eos, max_len=max_len)[0].numpy()
            for s, m in inputs
        ]
        for precision in ("fp32", "int8"):
            rt = OnnxSeq2Seq(out, precision, threads=threads)
            hyps = [rt.greedy(s.numpy(), m.numpy(), max_len)[0] for s, m in inputs]
            agreement[f"export_agreement_{precision}"] = token_agreement(ref, hyps, pad)
            latency[f"latency_ms_onnx_{precision}"] = median_ms(
                lambda s, m, rt=rt: rt.greedy(s.numpy(), m.numpy(), max_len, eos_id=-1), inputs
            )
        deployed = latency["latency_ms_onnx_int8" if c.quantize else "latency_ms_onnx_fp32"]
    else:
        deployed = median_ms(eager(deployed_eager), inputs)
    latency["latency_ms_compressed"] = deployed

    saved_model = module.model
    module.model = deployed_eager
    try:
        from distillab.jobs.common import evaluate

        after = quality(evaluate(eval_trainer(cfg), module, dm))
    finally:
        module.model = saved_model
    before_q = quality(metrics_before)
    counts_before, counts = param_counts(before), param_counts(compressed)
    report = {
        "params_before": counts_before["total"],
        "params_total": counts["total"],
        "params_nonzero": counts["nonzero"],
        "params_non_embedding_before": counts_before["non_embedding"],
        "params_non_embedding": counts["non_embedding"],
        "sparsity": sparsity,
        "sparsity_by_layer": by_layer,
        "size_bytes_fp32": serialized_bytes(before),
        "size_bytes_compressed": serialized_bytes(deployed_eager, compressed=True),
        **latency,
        "metrics_before": before_q,
        "metrics_after": after,
        "retained": {k: after[k] / v for k, v in before_q.items() if k in after and v},
        **agreement,
    }
    atomic_write_json(run_dir / "compression.json", report)
    log.info(
        f"distillab: compress: sparsity {sparsity:.3f}, "
        f"size {report['size_bytes_compressed'] / report['size_bytes_fp32']:.2f}x, "
        f"latency {deployed:.2f} ms vs {latency['latency_ms_fp32']:.2f} ms fp32 eager"
        + (
            f", export agreement fp32 {agreement['export_agreement_fp32']:.3f} / "
            f"int8 {agreement['export_agreement_int8']:.3f}"
            if c.export
            else ""
        )
    )
    return report
