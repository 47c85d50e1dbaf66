"""The `distill` group: the objective and its extra terms, sequence-level KD, on-policy
distillation, and what `teacher_outputs=cached` excludes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distillab.data.tokenizer import PRETRAINED, pretrained_tokenizer
from distillab.errors import ConfigError, check_choice, check_range
from distillab.losses.divergences import CACHED_DIVERGENCES
from distillab.losses.objective import check_distill_objective
from distillab.validate.fields import check_schema, is_a
from distillab.validate.groups import check_decoding
from distillab.validate.schemas import DISTILL, OBJECTIVE, ONPOLICY, SEQKD, TEACHER_OUTPUTS
from distillab.validate.targets import check_target


def check_distill(distill: Any) -> None:
    check_schema("distill", distill, DISTILL, "distillation (distill.*)")
    objective = distill["objective"]
    check_schema("distill.objective", objective, OBJECTIVE, "the objective")
    terms = objective.get("terms") or {}
    check_distill_objective(
        objective["alpha"],
        objective["temperature"],
        objective.get("alpha_end"),
        objective.get("temperature_end"),
        terms,
        objective.get("divergence", "forward_kl"),
        objective.get("jsd_beta", 0.5),
        objective.get("topic_kd", 0.0),
        objective.get("rating_kd", 0.0),
        objective.get("head_temperature"),
    )
    for name, spec in terms.items():
        check_target(f"distill.objective.terms.{name}", spec, extra=("weight",))
    check_schema("distill.seqkd", distill["seqkd"], SEQKD, "sequence-level KD")
    check_decoding("distill.seqkd.decoding", distill["seqkd"]["decoding"])
    check_schema("distill.onpolicy", distill["onpolicy"], ONPOLICY, "on-policy distillation")
    check_decoding("distill.onpolicy.sampling", distill["onpolicy"]["sampling"])


def check_teacher_outputs(cfg: Mapping) -> None:
    """`distill.teacher_outputs=cached` holds one teacher's outputs for un-augmented inputs and
    gold targets: whatever changes those, or needs more than them, is excluded."""
    d, data = cfg["distill"], cfg["data"]
    check_choice("distill.teacher_outputs", d["teacher_outputs"], TEACHER_OUTPUTS)
    if d["teacher_outputs"] != "cached":
        return
    check_range("distill.topk", d["topk"], 1, None)
    check_range("distill.tail_samples", d["tail_samples"], 0, None)
    vocab = data.get("vocab_size")
    if data.get("tokenizer") == PRETRAINED:  # its own size, whatever data.vocab_size says
        vocab = len(pretrained_tokenizer(data["tokenizer_path"]))
    if is_a(vocab, int) and d["topk"] > vocab:
        raise ConfigError(f"distill.topk={d['topk']} exceeds data.vocab_size={vocab}")
    clashes = []
    token_dropout, context_dropout = data.get("token_dropout", 0), data.get("context_dropout", 0)
    if token_dropout > 0 or context_dropout > 0:
        clashes.append(
            f"data augmentation (data.token_dropout={token_dropout}, "
            f"data.context_dropout={context_dropout}) changes the teacher's inputs"
        )
    if d["seqkd"]["enabled"]:
        clashes.append("distill.seqkd.enabled=true changes the targets")
    if d["onpolicy"]["enabled"]:
        clashes.append(
            "distill.onpolicy.enabled=true: the teacher must score the student's samples online"
        )
    divergence = d["objective"].get("divergence", "forward_kl")
    if divergence not in CACHED_DIVERGENCES:
        clashes.append(
            f"distill.objective.divergence={divergence}: the top-k + tail-draw cache has an "
            f"estimator for {', '.join(CACHED_DIVERGENCES)} only"
        )
    terms = d["objective"].get("terms") or {}
    if terms:
        clashes.append(
            f"extra loss terms (distill.objective.terms: {', '.join(terms)}) need the "
            "teacher's states (hidden/attention transfer)"
        )
    if cfg.get("extra_teachers"):
        clashes.append("extra_teachers: the cache holds one teacher")
    if clashes:
        raise ConfigError(
            "distill.teacher_outputs=cached excludes: "
            + "; ".join(clashes)
            + ". Use distill.teacher_outputs=online, or turn those off."
        )
