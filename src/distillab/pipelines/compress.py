"""The compression step after training (or in `distillab-eval`): prune, fine-tune, quantize,
export, measure; writes `compression.json` beside `metrics.json`.

The step starts from the job's checkpoint (best by the monitored metric, else the last). What
pruning does there is declared by the method: one that masks in place (`gradual`, magnitude
pruning) runs on the schedule during training, or in the fine-tuning phase; one step brings the
checkpoint to `sparsity` if it predates the schedule's end. One that `shrinks` (structured)
prunes here, after training, in the stages of `compress.schedule.structured_stages`: one step
and `finetune_steps` of recovery, or on the schedule (remove units, fine-tune, repeat). Each
stage's fine-tuning is a fresh trainer and optimiser for the new, smaller model, trained through
the job's module (its objective and teachers); a hidden-state projection narrows with it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from distillab.compress.callback import GradualPruning
from distillab.compress.measure import median_ms, param_counts, serialized_bytes
from distillab.compress.measure import sparsity as measure_sparsity
from distillab.compress.pruning import fold
from distillab.compress.quantize import quantize_int8
from distillab.compress.schedule import structured_stages
from distillab.compress.step import (
    fixed_inputs,
    load_checkpoint_model,
    save_checkpoint,
    token_agreement,
)
from distillab.compress.structured import narrow_projections
from distillab.decoding import Greedy
from distillab.export.card import write_model_card
from distillab.export.families import export_any
from distillab.export.onnx import data_export_settings
from distillab.export.runtime_kv import open_export
from distillab.pipelines.fit import eval_trainer, evaluate
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json

GREEDY = Greedy()
# (callbacks, max_steps) -> a trainer for fine-tuning under the job's hardware settings
TrainerFactory = Callable[[list[pl.Callback], int], pl.Trainer]


@dataclass
class Schedule:
    """Gradual pruning's steps: from `start_step` to `end_step`, every `frequency` steps."""

    start_step: int
    end_step: int
    frequency: int

    def callback(self, pruner: Any, sparsity: float) -> GradualPruning:
        return GradualPruning(pruner, sparsity, self.start_step, self.end_step, self.frequency)


@dataclass
class Compression:
    """What happens to a trained model (`compress` group), with its pruning method built."""

    run_dir: Path
    pruner: Any | None  # a pruning method (`compress.pruners[mode]`), None: no pruning
    quantize: bool
    export: bool
    sparsity: float
    finetune_steps: int
    schedule: Schedule | None
    eval_inputs: int
    finetune_trainer: TrainerFactory
    steps_trained: int = 0  # fine-tuning steps the last `run` trained (all stages)

    def training_callbacks(self) -> list[pl.Callback]:
        """Gradual pruning during training, when the schedule runs there (no fine-tuning) and
        the method masks in place."""
        if self.pruner is None or self.schedule is None or self.finetune_steps > 0:
            return []
        if not getattr(self.pruner, "gradual", False):
            return []  # a method that shrinks the model runs the schedule after training
        return [self.schedule.callback(self.pruner, self.sparsity)]

    def finetune(self, dm, module: pl.LightningModule, model: nn.Module) -> nn.Module:
        """Prune `model` inside `module` while training it `finetune_steps` more steps (the
        job's objective, teachers included): on the schedule, or one step to the target and
        fixed masks. No checkpoints or validation."""
        s = self.schedule or Schedule(0, 0, 1)
        log.info(f"distillab: compress: fine-tuning {self.finetune_steps} steps while pruning")
        callback = s.callback(self.pruner, self.sparsity)
        return fold(self.train(dm, module, model, [callback], self.finetune_steps)).cpu().eval()

    def shrink(self, dm, module: pl.LightningModule, model: nn.Module) -> nn.Module:
        """Structured pruning in stages, each to its target share of the original width
        followed by its fine-tuning steps; the module's model is the new one from then on."""
        s = self.schedule
        span = (s.start_step, s.end_step, s.frequency) if s is not None else None
        width = self.pruner.width  # what the method shrinks, counted (hidden units, heads...)
        original = width(model)
        for target, steps in structured_stages(self.sparsity, self.finetune_steps, span):
            share = 1.0 - original * (1.0 - target) / width(model)  # of the current width
            if share > 0:
                old, hidden = width(model), model.hidden_size
                model, units = self.pruner.shrink(model.cpu(), share)
                if units is not None:  # encoder output units went: projections narrow too
                    narrow_projections(module, units, hidden)
                log.info(
                    f"distillab: compress: {type(self.pruner).__name__} width {old} -> "
                    f"{width(model)}, then fine-tuning {steps} steps"
                )
            if steps > 0:
                model = self.train(dm, module, model, [], steps)
        module.model = model
        return model.cpu().eval()

    def train(self, dm, module, model: nn.Module, callbacks: list, steps: int) -> nn.Module:
        """`model` trained `steps` steps inside `module` by a fresh trainer (and optimiser)."""
        module.model = model.train()
        trainer = self.finetune_trainer(callbacks, steps)
        trainer.fit(module, datamodule=dm)
        self.steps_trained += trainer.global_step
        return module.model

    def run(self, dm, module: pl.LightningModule, ckpt: str, metrics_before: dict) -> dict:
        """Compress the model of `ckpt`, export it, measure it, write `compression.json` (and
        `compressed/model.ckpt`, `export/`) in the run directory."""
        before, state = load_checkpoint_model(ckpt)
        hp = state["hyper_parameters"]
        compressed = copy.deepcopy(before)
        embeddings, rest, sizes = False, None, None
        self.steps_trained = 0
        if self.pruner is not None:
            embeddings = bool(getattr(self.pruner, "embeddings", False))
            if getattr(self.pruner, "shrinks", False):
                compressed = self.shrink(dm, module, compressed)
                rest = {k: v for k, v in module.state_dict().items() if not k.startswith("model.")}
                sizes = self.pruner.model_config(compressed)
            elif self.finetune_steps > 0:
                compressed = self.finetune(dm, module, compressed)
            else:
                compressed = fold(self.pruner.prune(compressed, self.sparsity)).eval()
        save_checkpoint(state, compressed, self.run_dir / "compressed" / "model.ckpt", rest, sizes)
        int8 = quantize_int8(compressed) if self.quantize else None
        deployed_eager = int8 if int8 is not None else compressed

        sparsity, by_layer = measure_sparsity(before, compressed, embeddings)

        inputs = fixed_inputs(dm, self.eval_inputs)
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
        if self.export:
            out = export_any(
                compressed, self.run_dir / "export", dm.tokenizer, data_export_settings(dm, max_len)
            )
            eos = int(hp["eos_id"])
            ref = [
                GREEDY(compressed, s, m, bos_id=bos, eos_id=eos, max_len=max_len)[0].numpy()
                for s, m in inputs
            ]
            for precision in ("fp32", "int8"):
                rt = open_export(out, precision, threads=torch.get_num_threads())
                hyps = [rt.greedy(s.numpy(), m.numpy(), max_len)[0] for s, m in inputs]
                agreement[f"export_agreement_{precision}"] = token_agreement(ref, hyps, pad)
                latency[f"latency_ms_onnx_{precision}"] = median_ms(
                    lambda s, m, rt=rt: rt.greedy(s.numpy(), m.numpy(), max_len, eos_id=-1),
                    inputs,
                )
            deployed = latency["latency_ms_onnx_int8" if self.quantize else "latency_ms_onnx_fp32"]
        else:
            deployed = median_ms(eager(deployed_eager), inputs)
        latency["latency_ms_compressed"] = deployed

        saved_model = module.model
        module.model = deployed_eager
        try:
            after = quality(evaluate(eval_trainer(self.run_dir), module, dm))
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
            # sizes: the state dict as torch.save writes it; `_gzip`: that file gzip-ed -9,
            # so zeros cost (almost) nothing. Like for like: compressed / fp32_gzip
            "size_bytes_fp32": serialized_bytes(before),
            "size_bytes_fp32_gzip": serialized_bytes(before, compressed=True),
            "size_bytes_compressed": serialized_bytes(deployed_eager, compressed=True),
            **latency,
            "metrics_before": before_q,
            "metrics_after": after,
            "retained": {k: after[k] / v for k, v in before_q.items() if k in after and v},
            **agreement,
        }
        atomic_write_json(self.run_dir / "compression.json", report)
        if self.export:  # the export's record: which model it is and how to rebuild it
            write_model_card(self.run_dir / "export", self.run_dir, dict(hp))
        exported = (
            f", export agreement fp32 {agreement['export_agreement_fp32']:.3f} / "
            f"int8 {agreement['export_agreement_int8']:.3f}"
            if self.export
            else ""
        )
        log.info(
            f"distillab: compress: sparsity {sparsity:.3f}, "
            f"size {report['size_bytes_compressed'] / report['size_bytes_fp32']:.2f}x, "
            f"latency {deployed:.2f} ms vs {latency['latency_ms_fp32']:.2f} ms fp32 eager"
            + exported
            + f", {self.steps_trained} fine-tuning steps"
        )
        return report


def quality(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/"))}
