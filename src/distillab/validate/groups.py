"""Per-group checks of the job's own training config: data, model, optimizer, scheduler,
trainer, logger and callbacks, module, weighting, decoding (the teacher's training block reuses
them)."""

from __future__ import annotations

from typing import Any

from distillab.data.tokenizer import PRETRAINED, SPECIAL_TOKENS, pretrained_tokenizer
from distillab.decoding import build_strategy
from distillab.errors import ConfigError, check_choice, check_range, config_error_in
from distillab.validate.fields import check_fields, check_schema, fraction, is_a
from distillab.validate.schemas import (
    BPE_MIN_VOCAB,
    DATA_RANGES,
    MODEL_RANGES,
    MODULE,
    OPTIMIZER_RANGES,
    SCHEDULER_RANGES,
    TRAINER_RANGES,
    WIRED,
    WORDPIECE_MIN_VOCAB,
)
from distillab.validate.targets import check_target


def check_data(data: dict) -> None:
    check_target("data", data)
    if "source" in data:
        check_target("data.source", data["source"])
    check_fields("data", data, {"tokenizer": DATA_RANGES["tokenizer"]})
    kind, vocab = data.get("tokenizer", "bpe"), data.get("vocab_size", 8000)
    tok_path = data.get("tokenizer_path")
    if (kind == PRETRAINED) != (tok_path is not None):
        raise ConfigError(
            f"data.tokenizer={kind}, data.tokenizer_path={tok_path}: a tokenizer directory "
            f"goes with data.tokenizer={PRETRAINED} and only with it"
        )
    if kind == PRETRAINED:
        pretrained_tokenizer(tok_path)  # a directory with the special tokens the data needs
        vocab = None  # data.vocab_size is the pretrained tokenizer's
    need = BPE_MIN_VOCAB if kind == "bpe" else WORDPIECE_MIN_VOCAB
    if is_a(vocab, int) and vocab < need:  # before the generic range: says which tokenizer
        why = (
            f"{len(SPECIAL_TOKENS)} special tokens + 256 byte symbols"
            if kind == "bpe"
            else f"{len(SPECIAL_TOKENS)} special tokens + the corpus' characters"
        )
        raise ConfigError(
            f"data.vocab_size={vocab} is too small for data.tokenizer={kind}: "
            f"it needs at least {need} ({why})"
        )
    check_fields("data", data, DATA_RANGES)
    words = (data.get("min_target_words", 1), data.get("max_target_words", 64))
    check_range("data.min_target_words", words[0], 0, words[1])


def check_model(key: str, model: dict) -> None:
    check_target(key, model, wired=WIRED["model"])
    check_fields(key, model, MODEL_RANGES)
    if model.get("bidirectional", True) and model.get("hidden_size", 256) % 2:
        raise ConfigError(
            f"{key}.hidden_size={model['hidden_size']} must be even for a bidirectional "
            f"encoder ({key}.bidirectional=true: each direction gets half)"
        )


def check_optimizer(key: str, optimizer: dict) -> None:
    check_target(key, optimizer, wired=WIRED["optimizer"])
    check_fields(key, optimizer, OPTIMIZER_RANGES)
    betas = optimizer.get("betas")
    if betas is not None:
        if not isinstance(betas, list) or len(betas) != 2:
            raise ConfigError(f"{key}.betas={betas!r} must be a list of two numbers in [0, 1)")
        for i, b in enumerate(betas):
            fraction().check(f"{key}.betas[{i}]", b)


def check_scheduler(key: str, scheduler: dict) -> None:
    check_target(key, scheduler, wired=WIRED["scheduler"])
    check_fields(key, scheduler, SCHEDULER_RANGES)


def check_trainer_values(key: str, trainer: dict) -> None:
    check_fields(key, trainer, TRAINER_RANGES)
    interval = trainer.get("val_check_interval")
    if isinstance(interval, float):
        check_range(f"{key}.val_check_interval", interval, 0.0, 1.0, low_inclusive=False)
    elif is_a(interval, int):
        check_range(f"{key}.val_check_interval", interval, 1, None)
    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str):
        from pytorch_lightning.accelerators import AcceleratorRegistry

        names = ("auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators()))
        check_choice(f"{key}.accelerator", accelerator, names)


def check_budget(key: str, trainer: dict) -> None:
    if trainer.get("max_steps", -1) == -1 and trainer.get("max_epochs") == -1:
        raise ConfigError(
            f"{key}.max_steps=-1 and {key}.max_epochs=-1: training would never stop; "
            "set one of them"
        )


def check_trainer(trainer: dict) -> Any:
    target = check_target("trainer", trainer, wired=WIRED["trainer"])
    check_trainer_values("trainer", trainer)
    check_budget("trainer", trainer)
    return target


def check_entries(group: str, entries: Any) -> None:
    """logger / callbacks: name -> a target config (null: turned off)."""
    for name, node in (entries or {}).items():
        if node is not None:
            check_target(f"{group}.{name}", node)


def check_module(key: str, module: Any) -> None:
    check_schema(key, module, MODULE, "the module (module.*)")


def check_weighting(node: Any) -> None:
    """The task weighting (`weighting` group): its keys, and its ranges (built on two names;
    the objective passes its term names)."""
    check_target("weighting", node, wired={"names": "the objective passes its term names"})
    if not node.get("_partial_"):
        raise ConfigError("weighting._partial_ must be true (the objective passes `names`)")
    from hydra.utils import instantiate

    try:
        instantiate(node)(names=["ce", "kd"])
    except Exception as e:
        cause = config_error_in(e)
        if cause is None:
            raise
        raise cause from None


def check_decoding(key: str, decoding: dict) -> None:
    """A decoding strategy config: its keys, and its ranges (strategies are cheap to build)."""
    check_target(key, decoding)
    build_strategy(decoding, key)
