"""The LightningModules a job trains, from the model's own config nodes and the loaded data."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from distillab.data import DialogueDataModule
from distillab.modules.distill import DistillationModule
from distillab.modules.seq2seq import Seq2SeqModule
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
    if cfg.get("weighting") is not None:
        kwargs["weighting"] = plain(cfg.weighting)
    return kwargs


def gold_module(cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool]) -> Seq2SeqModule:
    """A model trained on gold responses (a teacher, a student from scratch)."""
    module = Seq2SeqModule(**module_kwargs(cfg, dm, heads))
    module.tokenizer = dm.tokenizer
    return module


def distillation_module(
    cfg: DictConfig, dm: DialogueDataModule, heads: tuple[int, bool], teachers: list[Teacher]
) -> DistillationModule:
    """A student of `teachers` under `distill.objective` and `distill.onpolicy`."""
    module = DistillationModule(
        **module_kwargs(cfg, dm, heads),
        objective=OmegaConf.to_container(cfg.distill.objective, resolve=True),
        teachers=teachers,
        init_from_teacher=bool(cfg.student.init_from_teacher),
        onpolicy=OmegaConf.to_container(cfg.distill.onpolicy, resolve=True),
    )
    module.tokenizer = dm.tokenizer
    return module
