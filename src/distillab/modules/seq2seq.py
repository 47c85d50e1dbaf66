"""The LightningModule that trains one seq2seq model (a teacher or a student) on gold responses.

The model is built inside the module from its Hydra config, so a checkpoint is self-contained:
`Seq2SeqModule.load_from_checkpoint(path)` needs nothing else (teachers are loaded that way).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from transformers import get_scheduler

from distillab.decoding import Strategy, build_strategy
from distillab.errors import check_choice, check_range
from distillab.models import Seq2SeqOutput
from distillab.modules.metrics import EvalMetrics

SCHEDULES = ("constant_with_warmup", "linear", "cosine")
DEFAULT_DECODING = {"_target_": "distillab.decoding.Greedy"}


def smoothed_nll(
    log_probs: Tensor,
    targets: Tensor,
    pad_id: int,
    smoothing: float,
    target_log_probs: Tensor | None = None,
) -> Tensor:
    """F.cross_entropy(..., ignore_index, label_smoothing) computed from log-probabilities.

    `target_log_probs` (`log_probs` gathered at `targets`, same shape as `targets`) may be given
    when a caller gathers them together with other ids: one gather, one [N, V] gradient buffer.
    """
    lp, tgt = log_probs.flatten(0, -2), targets.flatten()
    keep = (tgt != pad_id).to(lp.dtype)  # cheap [N]; nll_loss below masks by itself

    def masked_mean(x: Tensor) -> Tensor:
        return (x * keep).sum() / keep.sum().clamp(min=1.0)

    if target_log_probs is None:
        nll = F.nll_loss(lp, tgt, ignore_index=pad_id)
    else:
        nll = -masked_mean(target_log_probs.flatten().to(lp.dtype))
    if smoothing == 0:
        return nll
    return (1 - smoothing) * nll + smoothing * masked_mean(-lp.mean(-1))


def build_model(hp: Any) -> torch.nn.Module:
    """The network a module's hyperparameters describe (its Hydra model config + data wiring)."""
    return instantiate(
        hp["model"],
        vocab_size=hp["vocab_size"],
        pad_id=hp["pad_id"],
        num_topics=hp.get("num_topics", 0),
        rating_head=hp.get("rating_head", False),
    )


def adamw_param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only; biases, norms and gains are not decayed."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class Seq2SeqModule(pl.LightningModule):
    def __init__(
        self,
        model: dict | DictConfig,
        vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        num_topics: int = 0,
        rating_head: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 100,
        schedule: str = "linear",
        label_smoothing: float = 0.0,
        topic_weight: float = 1.0,
        rating_weight: float = 1.0,
        decode_examples: int = 64,
        max_decode_len: int = 32,
        decoding: dict | DictConfig | None = None,
        data_fingerprint: str = "",
        vocab_hash: str = "",
    ) -> None:
        super().__init__()
        check_range("module.lr", lr, 0.0, 10.0, low_inclusive=False)
        check_range("module.label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
        check_range("module.warmup_steps", warmup_steps, 0, None)
        check_choice("module.schedule", schedule, SCHEDULES)
        if isinstance(model, DictConfig):
            model = OmegaConf.to_container(model, resolve=True)
        if isinstance(decoding, DictConfig):
            decoding = OmegaConf.to_container(decoding, resolve=True)
        if decoding is None:
            decoding = dict(DEFAULT_DECODING)
        self.save_hyperparameters()
        self.model = build_model(self.hparams)
        self.decoding = build_strategy(decoding)  # validation decodes (BLEU/ROUGE), generate()
        self.tokenizer = None  # set by the caller; used to turn decodes into text for BLEU/ROUGE
        self.val_metrics = EvalMetrics(vocab_size, pad_id, num_topics, rating_head)
        self.test_metrics = EvalMetrics(vocab_size, pad_id, num_topics, rating_head)

    # ---- forward and losses ---------------------------------------------------------------
    def forward(self, batch: dict) -> Seq2SeqOutput:
        return self.model(batch["src"], batch["src_mask"], batch["tgt_in"])

    def gold_losses(
        self,
        out: Seq2SeqOutput,
        batch: dict,
        log_probs: Tensor | None = None,
        target_log_probs: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Cross-entropy on gold tokens (padding ignored) plus the task-head losses.

        `log_probs` (log_softmax of the logits) may be passed in so that a distillation loss
        can share it: the [tokens, vocab] softmax is the most expensive op of a step; so may
        `target_log_probs`, those log-probs already gathered at the gold tokens.
        """
        hp = self.hparams
        if log_probs is None:
            log_probs = F.log_softmax(out.logits.float(), dim=-1)
        losses = {
            "ce": smoothed_nll(
                log_probs, batch["tgt_out"], hp.pad_id, hp.label_smoothing, target_log_probs
            )
        }
        if out.topic_logits is not None:
            losses["topic"] = hp.topic_weight * F.cross_entropy(
                out.topic_logits.float(), batch["topic"]
            )
        if out.rating is not None:
            m = batch["rating_mask"].float()
            se = (out.rating.float() - batch["rating"]) ** 2
            losses["rating"] = hp.rating_weight * (se * m).sum() / m.sum().clamp(min=1.0)
        return losses

    def training_losses(self, out: Seq2SeqOutput, batch: dict) -> dict[str, Tensor]:
        """What the optimiser minimises; the distillation module adds its terms here."""
        return self.gold_losses(out, batch)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = self.training_losses(self(batch), batch)
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["src"].shape[0])
        if len(losses) > 1:
            self.log_dict(
                {f"train/{k}": v for k, v in losses.items()}, batch_size=batch["src"].shape[0]
            )
        return loss

    # ---- evaluation -----------------------------------------------------------------------
    def _eval_step(self, batch: dict, metrics: EvalMetrics, stage: str) -> None:
        out = self(batch)
        loss = self.gold_losses(out, batch)["ce"]
        self.log(f"{stage}/loss", loss, batch_size=batch["src"].shape[0], sync_dist=True)
        metrics.update_tokens(out.logits, batch["tgt_out"])
        metrics.update_heads(
            out.topic_logits, batch["topic"], out.rating, batch["rating"], batch["rating_mask"]
        )
        rows = batch["index"] < self.hparams.decode_examples
        if rows.any():
            hyps = self.generate(batch["src"][rows], batch["src_mask"][rows])
            metrics.update_text(self.to_text(hyps), self.to_text(batch["tgt_out"][rows]))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute("val"), prog_bar=False)
        self.val_metrics.reset()

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute("test"))
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

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        opt = torch.optim.AdamW(
            adamw_param_groups(self, hp.weight_decay), lr=hp.lr, betas=tuple(hp.betas)
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = get_scheduler(
            hp.schedule, opt, num_warmup_steps=min(hp.warmup_steps, total), num_training_steps=total
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def load_model(ckpt: str, map_location: str = "cpu") -> torch.nn.Module:
    """Just the seq2seq network of any distillab checkpoint (teacher, student or distilled),
    without the module that trained it: for evaluation, decoding and benchmarks."""
    state = torch.load(ckpt, map_location=map_location, weights_only=False)
    model = build_model(state["hyper_parameters"])
    weights = {
        k[len("model.") :]: v for k, v in state["state_dict"].items() if k.startswith("model.")
    }
    model.load_state_dict(weights)
    return model.eval()
