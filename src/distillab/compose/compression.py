"""The compression step's objects from the `compress` group."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from distillab.pipelines.compress import Compression, Schedule


def build_compression(cfg: DictConfig) -> Compression | None:
    """`cfg.compress` with its pruning method built; None when it does nothing."""
    c = cfg.get("compress")
    if not c or not (c.prune or c.quantize or c.export):
        return None
    run_dir = Path(cfg.paths.output_dir)
    s = c.schedule

    def finetune_trainer(callbacks: list[pl.Callback], steps: int) -> pl.Trainer:
        """The job's trainer settings for fine-tuning: no checkpoints, logs or validation."""
        return instantiate(
            cfg.trainer,
            max_steps=steps,
            max_epochs=-1,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=str(run_dir / "finetune"),
        )

    return Compression(
        run_dir=run_dir,
        pruner=instantiate(c.pruners[c.mode]) if c.prune else None,
        quantize=bool(c.quantize),
        export=bool(c.export),
        sparsity=float(c.sparsity),
        finetune_steps=int(c.finetune_steps),
        schedule=Schedule(s.start_step, s.end_step, s.frequency) if s is not None else None,
        eval_inputs=int(c.eval_inputs),
        finetune_trainer=finetune_trainer,
    )
