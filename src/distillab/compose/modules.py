"""The LightningModules a job trains, from the model's own config nodes and the loaded data.

Each module's network and objective are built here, once, and passed built: the network first
(the student's initialisation is the same whatever its objective), then the objective, whose
wiring reads the network's width (`student_hidden`) and the main teacher's (`teacher_hidden`).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from distillab.data.datamodule import DialogueDataModule
from distillab.losses.objective import distill_objective, gold_objective
from distillab.models.build import build_model, reads_turns
from distillab.modules.distill import DistillationModule
from distillab.modules.seq2seq import Seq2SeqModule, gold_parts
from distillab.teachers import Teacher


def module_kwargs(cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool]) -> dict:
    """The model being trained (`model`, `module`, `optimizer`, `scheduler`, `decoding`,
    `weighting`, the task's heads) wired to the data's vocabulary and labels."""

    def plain(node: Any) -> Any:
        return OmegaConf.to_container(node, resolve=True) if node is not None else None

    num_topics, rating_head = heads
    kwargs = plain(cfg.module)
    kwargs.update(
        model=plain(cfg.model),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler),
        decoding=plain(cfg.decoding),
        topic_weight=float(cfg.task.topic_weight),
        rating_weight=float(cfg.task.rating_weight),
        vocab_size=len(dm.tokenizer),
        pad_id=dm.pad_id,
        bos_id=dm.bos_id,
        eos_id=dm.eos_id,
        num_topics=num_topics,
        rating_head=rating_head,
        conversation_bag=bool(cfg.task.get("conversation_bag")) and (num_topics > 0 or rating_head),
        rating_loss=plain(cfg.task.get("rating_loss")) if rating_head else None,
        data_fingerprint=dm.fingerprint,
        vocab_hash=dm.vocab_hash,
    )
    if reads_turns(kwargs["model"]):  # the attention finds the turns by the speaker markers
        kwargs.update(self_id=dm.self_id, other_id=dm.other_id)
    if cfg.get("weighting") is not None:
        kwargs["weighting"] = plain(cfg.weighting)
    return kwargs


def gold_module(cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool]) -> Seq2SeqModule:
    """A model trained on gold responses (a teacher, a student from scratch)."""
    kwargs = module_kwargs(cfg, dm, heads)
    network = build_model(kwargs)
    objective = gold_objective(*gold_parts(kwargs))
    return Seq2SeqModule(**kwargs, network=network, objective=objective, tokenizer=dm.tokenizer)


def distillation_module(
    cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool], teachers: list[Teacher]
) -> DistillationModule:
    """A student of `teachers` under `distill.objective` and `distill.onpolicy`."""
    kwargs = module_kwargs(cfg, dm, heads)
    network = build_model(kwargs)
    terms, weights, weighting = gold_parts(kwargs)
    wiring = {
        "student_hidden": network.hidden_size,
        "teacher_hidden": teachers[0].hidden_size if teachers else None,
    }
    objective = distill_objective(
        terms,
        weights,
        **OmegaConf.to_container(cfg.distill.objective, resolve=True),
        wiring=wiring,
        weighting=weighting,
    )
    return DistillationModule(
        **kwargs,
        network=network,
        objective=objective,
        teachers=teachers,
        init_from_teacher=bool(cfg.student.init_from_teacher),
        layer_map=OmegaConf.to_container(cfg.student.layer_map)
        if cfg.student.get("layer_map") is not None
        else None,
        onpolicy=OmegaConf.to_container(cfg.distill.onpolicy, resolve=True),
        tokenizer=dm.tokenizer,
    )
