"""What a teacher gives the distillation objective for one batch.

The soft target of word-level KD comes in two forms that compute the KD loss their own way:
full logits (online teachers, averaged over several in probability space) or a cached top-k
with tail draws. A loss term calls `output.kd_loss(...)` and never asks which form it has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from distillab.losses.divergences import CACHED_DIVERGENCES
from distillab.losses.kd import average_teacher_probs, kd_loss_from_probs
from distillab.losses.topk import topk_kd_loss


@dataclass
class TeacherOutput:
    """Internals a transfer term may match; `None` where the teacher cannot provide them."""

    enc_states: Tensor | None = None  # [B, T_src, H_t]
    attn: Tensor | None = None  # [B, T_tgt, T_src]
    topic_logits: Tensor | None = None  # [B, num_topics]
    rating: Tensor | None = None  # [B]
    # per layer, for transfer terms with a layer map (None: `enc_states` / `attn` only)
    layer_states: Sequence[Tensor] | None = None  # each [B, T_src, H_t]
    layer_attn: Sequence[Tensor] | None = None  # each [B, T_tgt, T_src], heads averaged

    def kd_loss(
        self,
        student_logits: Tensor,
        temperature: float,
        mask: Tensor,
        student_log_probs: Tensor | None = None,
        divergence: str = "forward_kl",
        beta: float = 0.5,
        picked: Tensor | None = None,
        dense: Tensor | None = None,
    ) -> Tensor:
        """T^2 * mean over `mask` of D(teacher_T, student_T) for the named divergence
        (`losses.divergences`). `student_log_probs` is the student's log_softmax at T=1
        ([..., V]) when the caller has it (saves a softmax); `picked` and `dense`, its
        log_softmax at `temperature` already read at `sparse_ids` and along
        `dense_vectors` (`LossContext.teacher_read`)."""
        raise NotImplementedError(f"{type(self).__name__} carries no soft target")

    @property
    def sparse_ids(self) -> Tensor | None:
        """The token ids [B, T, C] at which `kd_loss` reads the student's log-probs, when it
        reads only those (a cached teacher); None when it needs the whole distribution."""
        return None

    @property
    def dense_vectors(self) -> Tensor | None:
        """Vectors [D, V] along which `kd_loss` reads the student's log-probs (dot
        products), beside `sparse_ids`; None when it reads none."""
        return None


@dataclass
class LogitsOutput(TeacherOutput):
    """Full teacher logits; several teachers are mixed with normalised `weights`."""

    logits: Sequence[Tensor] = field(default_factory=list)  # each [B, T_tgt, V]
    weights: Sequence[float] = field(default_factory=list)

    def kd_loss(
        self,
        student_logits,
        temperature,
        mask,
        student_log_probs=None,
        divergence="forward_kl",
        beta=0.5,
        picked=None,
        dense=None,
    ) -> Tensor:
        probs = average_teacher_probs(self.logits, self.weights, temperature)
        return kd_loss_from_probs(student_logits, probs, temperature, mask, divergence, beta)


@dataclass
class CachedOutput(TeacherOutput):
    """A batch's cached teacher outputs (`teachers.cache`): per target token the top-k
    and tail-draw log-probabilities and ids, softened at the cache's own
    `softening_temperature` (the distillation temperature is the loss's argument)."""

    values: Tensor | None = None  # [B, T_tgt, k + S] float (the codec's: fp16 exact, fp32 compact)
    ids: Tensor | None = None  # [B, T_tgt, k + S] int64
    tail_samples: int = 0
    softening_temperature: float = 1.0
    # the codec's KD loss over these columns (`Codec.estimator`)
    estimator: Callable[..., Tensor] = topk_kd_loss
    # the codec's vectors the estimator reads the student along (`Codec.dense_vectors`)
    vectors: Tensor | None = None

    @property
    def sparse_ids(self) -> Tensor | None:
        return self.ids

    @property
    def dense_vectors(self) -> Tensor | None:
        return self.vectors

    def kd_loss(
        self,
        student_logits,
        temperature,
        mask,
        student_log_probs=None,
        divergence="forward_kl",
        beta=0.5,
        picked=None,
        dense=None,
    ) -> Tensor:
        """The sparse target is an unbiased estimate of the forward KL's gradient only (see
        `topk_kd_loss`); other divergences are refused here (and in `validate`, at start)."""
        if divergence not in CACHED_DIVERGENCES:
            raise ValueError(
                f"divergence={divergence!r} has no estimator from cached top-k outputs; "
                f"use one of {list(CACHED_DIVERGENCES)} or teacher_outputs=online"
            )
        return self.estimator(
            student_logits,
            self.values,
            self.ids,
            temperature,
            mask,
            picked,
            self.tail_samples,
            self.softening_temperature,
            full_log_probs=student_log_probs,
            dense=dense,
        )


def combine_outputs(outputs: Sequence[TeacherOutput], weights: Sequence[float]) -> TeacherOutput:
    """One output for several teachers: their logits mixed by weight; internals (states,
    attention, heads) from the first teacher."""
    if len(outputs) == 1:
        return outputs[0]
    logits: list[Tensor] = []
    mixed: list[float] = []
    for out, w in zip(outputs, weights, strict=True):
        if not isinstance(out, LogitsOutput):
            raise TypeError(f"only online teachers can be mixed, got {type(out).__name__}")
        total = sum(out.weights)
        logits += list(out.logits)
        mixed += [w * x / total for x in out.weights]
    first = outputs[0]
    return LogitsOutput(
        enc_states=first.enc_states,
        attn=first.attn,
        topic_logits=first.topic_logits,
        rating=first.rating,
        layer_states=first.layer_states,
        layer_attn=first.layer_attn,
        logits=logits,
        weights=mixed,
    )
