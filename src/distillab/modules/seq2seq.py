"""The LightningModule that trains one seq2seq model (a teacher or a student) on gold responses.

The module records the model's Hydra config (and everything else its network and gold objective
are built from) in its hyperparameters, so a checkpoint is self-contained:
`distillab.checkpoint.load_model(path)` rebuilds the network from it without this module.

The composition root (`distillab.compose.modules`) builds the network and the objective and
passes them built (`network`, `objective`). A module constructed without them builds both here
from its own hyperparameters (`build_model`, `gold_parts`): that is how evaluation rebuilds a
module from a checkpoint (`from_checkpoint`, `load_from_checkpoint`), where no run config
exists, only what the checkpoint recorded; the gold objective is a function of those
hyperparameters, so both routes build the same one.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from distillab.checkpoint import model_from, read_checkpoint
from distillab.data.batch import Batch, TrainingBatch
from distillab.decoding import Strategy, build_strategy
from distillab.losses.context import LossContext
from distillab.losses.objective import Objective, WeightingFactory, gold_objective
from distillab.losses.terms import gold_terms
from distillab.models import Seq2SeqOutput
from distillab.models.build import build_model
from distillab.modules.finite import FiniteGuard
from distillab.modules.metrics import EvalMetrics
from distillab.modules.optim import param_groups

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}
DEFAULT_SCHEDULER = {"_target_": "distillab.modules.optim.warmup_schedule", "_partial_": True}
DEFAULT_DECODING = {"_target_": "distillab.decoding.Greedy"}
DEFAULT_WEIGHTING = {"_target_": "distillab.losses.weighting.Fixed", "_partial_": True}


def gold_parts(hp: Mapping[str, Any]) -> tuple[dict, dict[str, float], WeightingFactory]:
    """The gold-data terms (response CE, the task heads the model has), their weights and the
    task weighting's factory (`weighting` group, `_partial_`: the objective builds it with its
    term names, as its submodule, so learned weights are trained and checkpointed) of a
    module constructed with `hp` (an argument it lacks takes the constructor's default). The
    rating's term is `rating_loss` (a `_target_` config; None: `RatingMSE`)."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(Seq2SeqModule).parameters.items()
        if p.default is not p.empty
    }
    hp = {**defaults, **hp}
    rating_loss = hp["rating_loss"]
    terms, weights = gold_terms(
        hp["label_smoothing"],
        hp["topic_weight"] if hp["num_topics"] else None,
        hp["rating_weight"] if hp["rating_head"] else None,
        instantiate(rating_loss) if rating_loss else None,
    )
    return terms, weights, instantiate(hp["weighting"] or DEFAULT_WEIGHTING)


class Seq2SeqModule(pl.LightningModule):
    # constructor arguments kept out of checkpoints (live objects the hyperparameters describe)
    not_hyperparameters: tuple[str, ...] = ("network", "objective", "tokenizer")

    def __init__(
        self,
        model: dict | DictConfig,
        vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        num_topics: int = 0,
        rating_head: bool = False,
        conversation_bag: bool = False,
        rating_loss: dict | None = None,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        label_smoothing: float = 0.0,
        topic_weight: float = 1.0,
        rating_weight: float = 1.0,
        decode_examples: int = 64,
        finite_check_every: int = 1,
        max_decode_len: int = 32,
        decoding: dict | DictConfig | None = None,
        data_fingerprint: str = "",
        vocab_hash: str = "",
        weighting: dict | DictConfig | None = None,
        self_id: int | None = None,
        other_id: int | None = None,
        network: nn.Module | None = None,
        objective: Objective | None = None,
        tokenizer: Any = None,
    ) -> None:
        """`network`: the network `model` describes, built by the caller (None: built here);
        `objective`: the training objective, built (None: the gold objective of `gold_parts`,
        from these arguments); `tokenizer`: turns decodes into text for BLEU/ROUGE (None:
        space-joined ids)."""
        super().__init__()
        model, optimizer, scheduler, decoding, weighting = (
            OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else c
            for c in (
                model,
                optimizer or DEFAULT_OPTIMIZER,
                scheduler or DEFAULT_SCHEDULER,
                decoding or DEFAULT_DECODING,
                weighting or DEFAULT_WEIGHTING,
            )
        )
        self.save_hyperparameters(ignore=list(self.not_hyperparameters))
        hp = self.hparams
        self.model = network if network is not None else build_model(hp)
        self.objective = objective if objective is not None else gold_objective(*gold_parts(hp))
        self.decoding = build_strategy(decoding)  # validation decodes (BLEU/ROUGE), generate()
        self.tokenizer = tokenizer
        self.finite_guard = FiniteGuard(finite_check_every)
        self.val_metrics = EvalMetrics(vocab_size, pad_id, num_topics, rating_head)
        self.test_metrics = EvalMetrics(vocab_size, pad_id, num_topics, rating_head)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """No checkpoint holds weights trained on a non-finite loss the guard has not read."""
        self.finite_guard.flush(self.global_step)

    def on_train_end(self) -> None:
        self.finite_guard.flush(self.global_step)

    # ---- forward and losses ---------------------------------------------------------------
    def forward(self, batch: Batch) -> Seq2SeqOutput:
        return self.model.forward_batch(batch)

    def progress(self) -> float:
        """Share of training done, in [0, 1] (drives weight and temperature schedules)."""
        try:
            trainer = self.trainer
        except RuntimeError:  # Lightning's answer for a module not attached to a Trainer
            return 0.0
        total = trainer.estimated_stepping_batches
        return self.global_step / total if total and total != float("inf") else 0.0

    def writes_logs(self) -> bool:
        """Whether the logger writes this training step's values: step values are written
        every `trainer.log_every_n_steps` and dropped in between, and each `self.log` costs a
        small model's step about a quarter of a millisecond, so the per-term values are
        logged on the written steps only (`train/loss`, on the progress bar, every step)."""
        try:
            every = self.trainer.log_every_n_steps
        except RuntimeError:  # not attached to a Trainer
            return True
        return every > 0 and (self.global_step + 1) % every == 0

    def loss_context(
        self, out: Seq2SeqOutput, batch: Batch, progress: float, gold: bool = True
    ) -> LossContext:
        """What the loss terms read (`gold`: whether the batch's targets are gold); the
        distillation module adds the teacher's outputs."""
        return LossContext(student=out, batch=batch, pad_id=self.hparams.pad_id, gold=gold)

    def training_batch(self, batch: Batch) -> TrainingBatch:
        """The batch the step trains on and whether its targets are gold (on-policy
        distillation replaces them with the student's samples)."""
        return TrainingBatch(batch)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        step = self.training_batch(batch)
        progress = self.progress()
        ctx = self.loss_context(self(step.batch), step.batch, progress, step.gold)
        loss, values, weights = self.objective(ctx, progress)
        self.finite_guard(loss, values, self.global_step)
        size = step.batch.size
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        if len(values) > 1 and self.writes_logs():
            self.log_dict({f"train/{k}": v for k, v in values.items()}, batch_size=size)
            self.log_dict({f"weight/{k}": w for k, w in weights.items()}, batch_size=size)
        return loss

    # ---- evaluation -----------------------------------------------------------------------
    def _eval_step(self, batch: Batch, metrics: EvalMetrics, stage: str) -> None:
        out = self(batch)
        gold = LossContext(student=out, batch=batch, pad_id=self.hparams.pad_id)  # no teacher
        loss = self.objective.terms["ce"](gold)
        self.log(f"{stage}/loss", loss, batch_size=batch.size, sync_dist=True)
        metrics.update_tokens(out.logits, batch.tgt_out)
        metrics.update_heads(
            out.topic_logits, batch.topic, out.rating, batch.rating, batch.rating_mask
        )
        rows = batch.index < self.hparams.decode_examples
        if rows.any():
            hyps = self.generate(batch.src[rows], batch.src_mask[rows])
            metrics.update_text(self.to_text(hyps), self.to_text(batch.tgt_out[rows]))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")

    def on_validation_epoch_end(self) -> None:
        # torchmetrics has synced the values across DDP ranks; sync_dist only says so
        self.log_dict(self.val_metrics.compute("val"), prog_bar=False, sync_dist=True)
        self.val_metrics.reset()

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute("test"), sync_dist=True)
        self.test_metrics.reset()

    def generate(self, src: Tensor, src_mask: Tensor, strategy: Strategy | None = None) -> Tensor:
        """Decode with `strategy` (default: the module's `decoding`) up to `max_decode_len`."""
        hp = self.hparams
        return (strategy or self.decoding)(
            self.model, src, src_mask, bos_id=hp.bos_id, eos_id=hp.eos_id, max_len=hp.max_decode_len
        )

    def to_text(self, ids: Tensor) -> list[str]:
        """Token ids -> strings (up to EOS); without a tokenizer, space-joined ids."""
        seqs = []
        for row in ids.tolist():
            row = row[: row.index(self.hparams.eos_id)] if self.hparams.eos_id in row else row
            seqs.append([t for t in row if t != self.hparams.pad_id])
        if self.tokenizer is None:
            return [" ".join(map(str, s)) for s in seqs]
        return [t.strip() for t in self.tokenizer.batch_decode(seqs, skip_special_tokens=True)]

    @classmethod
    def from_checkpoint(cls, path: str, tokenizer: Any = None) -> Seq2SeqModule:
        """A module with the gold objective (no teacher needed) holding the network of any
        distillab checkpoint (teacher, student, distilled, compressed): for evaluation."""
        recorded = set(inspect.signature(Seq2SeqModule).parameters)
        recorded -= set(Seq2SeqModule.not_hyperparameters)
        state = read_checkpoint(path)
        hp = state["hyper_parameters"]  # (older distilled ones: `objective` too)
        kept = {k: v for k, v in dict(hp).items() if k in recorded}
        return Seq2SeqModule(**kept, network=model_from(state, path), tokenizer=tokenizer)

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """`optimizer` and `scheduler` are `_partial_` configs (conf/optimizer, conf/scheduler);
        weight decay, if the optimiser takes one, spares biases and gains."""
        hp = self.hparams
        make_optimizer = instantiate(hp.optimizer)
        decay = float(hp.optimizer.get("weight_decay", 0.0))
        opt = make_optimizer(params=param_groups(self, decay))
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = instantiate(hp.scheduler)(optimizer=opt, total_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
