"""The `distill` group: the objective (every distillation temperature's one range), its extra
terms, sequence-level KD, on-policy distillation, what `teacher_outputs=cached` excludes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from distillab.config import constants as c
from distillab.config.groups import Decoding, Seed, Share
from distillab.config.targets import Node, Target, self_check
from distillab.errors import ConfigError

Temperature = Annotated[float, Field(gt=0.0, le=100.0)]


class Term(Target, title="a loss term"):
    """An extra loss term: a class of `distillab.losses.terms` (or a file of its own)."""

    EXTRA = ("weight",)
    weight: float = Field(ge=0.0)


class Objective(Node, title="the objective"):
    alpha: Share  # the teacher's share: ce weighs (1 - alpha), kd weighs alpha
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
        for name in set(self.terms or {}) & set(c.BUILT_IN_TERMS):
            raise ValueError(f"@.terms.{name}: '{name}' is a built-in term; choose another name")
        return self


class SeqKD(Node, title="sequence-level KD"):
    enabled: bool
    decoding: Decoding
    gold_fraction: Share


class OnPolicy(Node, title="on-policy distillation"):
    enabled: bool
    lmbda: Share
    sampling: Decoding
    seed: Seed


class Codec(Target, title="the teacher-output cache's codec"):
    """A codec of `teachers.codecs` (or a file of its own): it checks its own ranges."""

    @model_validator(mode="after")
    def _ranges(self) -> Codec:
        self_check(self.spec(), "distill.codec")
        return self


class Distill(Node, title="distillation (distill.*)"):
    objective: Objective
    seqkd: SeqKD
    onpolicy: OnPolicy
    teacher_outputs: Literal[c.TEACHER_OUTPUTS]
    topk: int = Field(ge=1)
    tail_samples: int = Field(ge=0)
    codec: Codec | None = None  # distill/codec=compact|exact (None: compact's defaults)


def check_teacher_outputs(run: Any, vocab: int | None = None) -> None:
    """`distill.teacher_outputs=cached` holds one teacher's outputs for un-augmented inputs and
    gold targets: whatever changes those, or needs more, is excluded. `vocab`: a pretrained
    tokenizer's size (its own, whatever data.vocab_size says)."""
    d, data, obj = run.distill, run.data, run.distill.objective
    if d.teacher_outputs != "cached":
        return
    vocab = vocab or (data.vocab_size if data.tokenizer != c.PRETRAINED else None)
    if vocab is not None and d.topk > vocab:
        raise ConfigError(f"distill.topk={d.topk} exceeds data.vocab_size={vocab}")
    dropout = (
        f"data.token_dropout={data.token_dropout}, data.context_dropout={data.context_dropout}"
    )
    clashes = {
        f"data augmentation ({dropout}) changes the teacher's inputs": (data.token_dropout or 0)
        + (data.context_dropout or 0),
        "distill.seqkd.enabled=true changes the targets": d.seqkd.enabled,
        "distill.onpolicy.enabled=true: the teacher must score the student's samples online": (
            d.onpolicy.enabled
        ),
        f"distill.objective.divergence={obj.divergence}: the top-k + tail-draw cache has an "
        f"estimator for {', '.join(c.CACHED_DIVERGENCES)} only": obj.divergence
        not in c.CACHED_DIVERGENCES,
        f"extra loss terms (distill.objective.terms: {', '.join(obj.terms or {})}) need the "
        "teacher's states (hidden/attention transfer)": obj.terms,
        "extra_teachers: the cache holds one teacher": run.extra_teachers,
    }
    if any(clashes.values()):
        raise ConfigError(
            "distill.teacher_outputs=cached excludes: "
            + "; ".join(k for k, v in clashes.items() if v)
            + ". Use distill.teacher_outputs=online, or turn those off."
        )
