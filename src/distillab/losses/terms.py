"""Named loss terms: each returns an unweighted value; the `Objective` weighs and sums them.

A term is an `nn.Module` whose `forward(ctx: LossContext) -> Tensor` reads what it needs from
the context (the student's outputs, the batch, the teacher's outputs, the temperature). Adding
one is one class here (or in a file of its own) and one entry under `distill.objective.terms`.
A term may declare the constructor arguments `student_hidden` and `teacher_hidden`; the
objective fills those from the models (see `Objective.build_term`).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from distillab.errors import ConfigError
from distillab.losses.context import LossContext
from distillab.losses.divergences import get_divergence
from distillab.losses.kd import kd_loss
from distillab.losses.transfer import attention_transfer_loss, hidden_state_loss


def smoothed_nll(
    log_probs: Tensor,
    targets: Tensor,
    pad_id: int,
    smoothing: float,
    gold_log_probs: Tensor | None = None,
) -> Tensor:
    """F.cross_entropy(..., ignore_index=pad_id, label_smoothing=smoothing) from log-probs
    (0 when every target is padding). `gold_log_probs`: `log_probs` already gathered at
    `targets` (`LossContext.gold_read`)."""
    lp, tgt = log_probs.flatten(0, -2), targets.flatten()
    if gold_log_probs is None:
        gold_log_probs = lp.gather(-1, tgt.unsqueeze(-1))
    keep = (tgt != pad_id).to(lp.dtype)
    count = keep.sum().clamp(min=1.0)
    nll = -(gold_log_probs.reshape(-1) * keep).sum() / count
    if smoothing == 0:
        return nll
    uniform = (-lp.mean(-1) * keep).sum() / count
    return (1 - smoothing) * nll + smoothing * uniform


class GoldCE(nn.Module):
    """Cross-entropy on the gold response tokens (padding ignored), optional label smoothing."""

    needs_gold = True

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, ctx: LossContext) -> Tensor:
        gold = ctx.gold_read
        return smoothed_nll(
            ctx.log_probs, ctx.batch.tgt_out, ctx.pad_id, self.label_smoothing, gold
        )


class TopicCE(nn.Module):
    """Topic classification from the shared encoder (task=multi)."""

    def forward(self, ctx: LossContext) -> Tensor:
        return F.cross_entropy(ctx.student.topic_logits.float(), ctx.batch.topic)


def rated_mean(error: Tensor, ctx: LossContext) -> Tensor:
    """Mean of a per-conversation ``error [B]`` over the rated rows (unrated are masked)."""
    m = ctx.batch.rating_mask.to(error.dtype)
    return (error * m).sum() / m.sum().clamp(min=1.0)


class RatingMSE(nn.Module):
    """Rating regression in [0, 1], squared error: trains the head for the conditional mean."""

    def forward(self, ctx: LossContext) -> Tensor:
        return rated_mean((ctx.student.rating.float() - ctx.batch.rating) ** 2, ctx)


class RatingL1(nn.Module):
    """Rating regression in [0, 1], absolute error: trains the head for the conditional
    median, the prediction with the least mean absolute error (what `rating_mae` and the
    median baseline measure; on skewed ratings the mean loses to the median on MAE)."""

    def forward(self, ctx: LossContext) -> Tensor:
        return rated_mean((ctx.student.rating.float() - ctx.batch.rating).abs(), ctx)


class LogitKD(nn.Module):
    """Word-level KD: T^2 * D(teacher_T, student_T) over response tokens (Hinton et al.), D a
    divergence named in `losses.divergences` (forward KL by default)."""

    def __init__(self, divergence: str = "forward_kl", beta: float = 0.5) -> None:
        super().__init__()
        get_divergence(divergence)
        self.divergence, self.beta = divergence, float(beta)

    def forward(self, ctx: LossContext) -> Tensor:
        return ctx.teacher.kd_loss(
            ctx.student.logits,
            ctx.temperature,
            ctx.batch.tgt_mask,
            ctx.log_probs,
            self.divergence,
            self.beta,
            picked=ctx.teacher_read.sparse,
            dense=ctx.teacher_read.dense,
        )


class TopicKD(nn.Module):
    """Distils the teacher's topic head: T^2 * KL(teacher_T || student_T) over topics (task=multi)
    at `temperature`, or at the distillation temperature when that is None. A teacher that fits
    its training conversations is near one-hot on them at T=1, so its topic targets say little
    beyond the gold label there; a higher temperature exposes which topics it finds alike."""

    def __init__(self, temperature: float | None = None) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, ctx: LossContext) -> Tensor:
        if ctx.teacher.topic_logits is None:
            raise ConfigError("distill.objective.topic_kd: this teacher has no topic head")
        t = ctx.temperature if self.temperature is None else self.temperature
        return kd_loss(ctx.student.topic_logits, ctx.teacher.topic_logits, t)


class RatingDistill(nn.Module):
    """Distils the teacher's rating head: MSE to its prediction on every conversation, rated
    or not (task=multi)."""

    def forward(self, ctx: LossContext) -> Tensor:
        if ctx.teacher.rating is None:
            raise ConfigError("distill.objective.rating_kd: this teacher has no rating head")
        return F.mse_loss(ctx.student.rating.float(), ctx.teacher.rating.detach().float())


class LayerMap:
    """Pairs of (student layer, teacher layer) a transfer term matches; both None: each
    side's output tensor (`enc_states` / `attn`: the last encoder layer, the chosen
    attention layer). Indices may be negative (-1: the last layer)."""

    def __init__(self, student_layers: list[int] | None, teacher_layers: list[int] | None):
        if (student_layers is None) != (teacher_layers is None) or (
            student_layers is not None and len(student_layers) != len(teacher_layers or [])
        ):
            raise ConfigError(
                f"student_layers={student_layers} and teacher_layers={teacher_layers} pair "
                "layers one to one: give both, of equal length (or neither)"
            )
        self.student, self.teacher = student_layers, teacher_layers

    @staticmethod
    def pick(layers: Any, last: Tensor, picks: list[int] | None, side: str) -> list[Tensor]:
        if picks is None:
            return [last]
        available = list(layers) if layers is not None else [last]
        if any(not -len(available) <= i < len(available) for i in picks):
            raise ConfigError(
                f"{side}_layers={picks}: the {side} offers {len(available)} layer(s) here"
            )
        return [available[i] for i in picks]

    def pairs(self, student: Any, teacher: Any, field: str, layers: str):
        s = self.pick(getattr(student, layers), getattr(student, field), self.student, "student")
        t = self.pick(getattr(teacher, layers), getattr(teacher, field), self.teacher, "teacher")
        return list(zip(s, t, strict=True))


class HiddenStateMSE(nn.Module):
    """MSE between encoder (context) states, through one learned projection when the widths
    differ; with `student_layers`/`teacher_layers`, the mean over those pairs of layers (a
    layer map between depths)."""

    def __init__(
        self,
        student_hidden: int,
        teacher_hidden: int | None,
        student_layers: list[int] | None = None,
        teacher_layers: list[int] | None = None,
    ) -> None:
        super().__init__()
        if teacher_hidden is None:
            raise ConfigError(
                "distill.objective.terms.hidden: this teacher exposes no encoder states"
            )
        self.layers = LayerMap(student_layers, teacher_layers)
        self.projection = (
            nn.Linear(student_hidden, teacher_hidden) if student_hidden != teacher_hidden else None
        )

    def forward(self, ctx: LossContext) -> Tensor:
        pairs = self.layers.pairs(ctx.student, ctx.teacher, "enc_states", "layer_states")
        losses = [hidden_state_loss(s, t, ctx.batch.src_mask, self.projection) for s, t in pairs]
        return sum(losses) / len(losses)


class AttentionKL(nn.Module):
    """KL(teacher attention || student attention), per response token's attention row (heads
    averaged); with `student_layers`/`teacher_layers`, the mean over those pairs of layers."""

    def __init__(
        self, student_layers: list[int] | None = None, teacher_layers: list[int] | None = None
    ) -> None:
        super().__init__()
        self.layers = LayerMap(student_layers, teacher_layers)

    def forward(self, ctx: LossContext) -> Tensor:
        b = ctx.batch
        pairs = self.layers.pairs(ctx.student, ctx.teacher, "attn", "layer_attn")
        losses = [attention_transfer_loss(s, t, b.tgt_mask, b.src_mask) for s, t in pairs]
        return sum(losses) / len(losses)


def gold_terms(
    label_smoothing: float,
    topic_weight: float | None,
    rating_weight: float | None,
    rating_loss: nn.Module | None = None,
) -> tuple[dict[str, nn.Module], dict[str, float]]:
    """Terms and weights of training on gold data: response CE (weight 1), plus the task
    heads that exist (a weight of None: no such head); the rating's term is `rating_loss`
    (`task.rating_loss`, default `RatingMSE`)."""
    terms: dict[str, nn.Module] = {"ce": GoldCE(label_smoothing)}
    weights = {"ce": 1.0}
    if topic_weight is not None:
        terms["topic"], weights["topic"] = TopicCE(), float(topic_weight)
    if rating_weight is not None:
        terms["rating"], weights["rating"] = rating_loss or RatingMSE(), float(rating_weight)
    return terms, weights


__all__ = [
    "AttentionKL",
    "GoldCE",
    "HiddenStateMSE",
    "LogitKD",
    "LossContext",
    "RatingDistill",
    "RatingL1",
    "RatingMSE",
    "TopicCE",
    "TopicKD",
    "gold_terms",
    "rated_mean",
    "smoothed_nll",
]
