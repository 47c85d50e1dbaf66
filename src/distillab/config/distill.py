"""The `distill` group: the objective (the temperature's one range), its extra terms,
sequence-level KD, on-policy distillation, and what `teacher_outputs=cached` excludes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from distillab.config import constants as c
from distillab.config.groups import Decoding, Seed, Share
from distillab.config.targets import Node, Target
from distillab.errors import ConfigError

Temperature = Annotated[float, Field(gt=0.0, le=100.0)]  # every distillation temperature


class Term(Target):
    """An extra loss term: a class of `distillab.losses.terms` (or a file of its own)."""

    model_config = ConfigDict(title="a loss term")
    EXTRA = ("weight",)
    weight: float = Field(ge=0.0)


class Objective(Node):
    model_config = ConfigDict(title="the objective")
    alpha: Share
    temperature: Temperature
    alpha_end: Share | None = None
    temperature_end: Temperature | None = None
    terms: dict[str, Term] | None = None
    divergence: Literal[c.DIVERGENCES] = "forward_kl"
    jsd_beta: Share = 0.5
    topic_kd: float = Field(0.0, ge=0.0)
    rating_kd: float = Field(0.0, ge=0.0)
    head_temperature: Temperature | None = None  # topic_kd's (None: `temperature`)

    @model_validator(mode="after")
    def _names(self) -> Objective:
        for name in self.terms or {}:
            if name in c.BUILT_IN_TERMS:
                raise ValueError(
                    f"@.terms.{name}: '{name}' is a built-in term; choose another name"
                )
        return self


class SeqKD(Node):
    model_config = ConfigDict(title="sequence-level KD")
    enabled: bool
    decoding: Decoding
    gold_fraction: Share


class OnPolicy(Node):
    model_config = ConfigDict(title="on-policy distillation")
    enabled: bool
    lmbda: Share
    sampling: Decoding
    seed: Seed


class Distill(Node):
    model_config = ConfigDict(title="distillation (distill.*)")
    objective: Objective
    seqkd: SeqKD
    onpolicy: OnPolicy
    teacher_outputs: Literal[c.TEACHER_OUTPUTS]
    topk: int = Field(ge=1)
    tail_samples: int = Field(ge=0)


def check_teacher_outputs(run: Any, vocab: int | None = None) -> None:
    """`distill.teacher_outputs=cached` holds one teacher's outputs for un-augmented inputs and
    gold targets: whatever changes those, or needs more than them, is excluded. `vocab`: a
    pretrained tokenizer's size (its own, whatever data.vocab_size says)."""
    d, data = run.distill, run.data
    if d.teacher_outputs != "cached":
        return
    vocab = vocab or (data.vocab_size if data.tokenizer != c.PRETRAINED else None)
    if vocab is not None and d.topk > vocab:
        raise ConfigError(f"distill.topk={d.topk} exceeds data.vocab_size={vocab}")
    clashes = []
    if (data.token_dropout or 0) > 0 or (data.context_dropout or 0) > 0:
        clashes.append(
            f"data augmentation (data.token_dropout={data.token_dropout}, "
            f"data.context_dropout={data.context_dropout}) changes the teacher's inputs"
        )
    if d.seqkd.enabled:
        clashes.append("distill.seqkd.enabled=true changes the targets")
    if d.onpolicy.enabled:
        clashes.append(
            "distill.onpolicy.enabled=true: the teacher must score the student's samples online"
        )
    if d.objective.divergence not in c.CACHED_DIVERGENCES:
        clashes.append(
            f"distill.objective.divergence={d.objective.divergence}: the top-k + tail-draw "
            f"cache has an estimator for {', '.join(c.CACHED_DIVERGENCES)} only"
        )
    if d.objective.terms:
        clashes.append(
            f"extra loss terms (distill.objective.terms: {', '.join(d.objective.terms)}) need "
            "the teacher's states (hidden/attention transfer)"
        )
    if run.extra_teachers:
        clashes.append("extra_teachers: the cache holds one teacher")
    if clashes:
        raise ConfigError(
            "distill.teacher_outputs=cached excludes: "
            + "; ".join(clashes)
            + ". Use distill.teacher_outputs=online, or turn those off."
        )
