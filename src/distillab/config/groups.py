"""One schema per config group of a training job (`conf/<group>/`): data, model, task,
weighting, decoding, optimizer, scheduler, trainer, logger and callbacks entries, paths,
module, student. Each range and choice is written here once; constructors take checked values."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from distillab.config import constants as c
from distillab.config.targets import Node, Target, resolve, self_check

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]  # [0, 1)
Share = Annotated[float, Field(ge=0.0, le=1.0)]  # [0, 1]
Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, le=c.MAX_SEED)]
Split = Annotated[float, Field(gt=0.0, le=0.5)]
Length = Annotated[int, Field(le=4096)]


class Data(Target):
    source: Target | None = None
    path: str | None = None
    tokenizer_path: str | None = None
    context_turns: int = Field(None, ge=1, le=64)
    head_turns: int = Field(None, ge=0, le=64)
    head_bag_len: int = Field(None, ge=1, le=1_000_000)
    val_fraction: Split = None
    test_fraction: Split = None
    max_examples: int | None = Field(None, ge=10)
    max_train_examples: Count | None = None
    tokenizer: Literal[c.TOKENIZER_KINDS] = None
    vocab_size: int = Field(None, ge=100, le=1_000_000)
    min_frequency: int = Field(None, ge=0)
    max_source_len: Length = Field(None, ge=4)
    max_target_len: Length = Field(None, ge=2)
    min_target_words: int = Field(None, ge=0)
    max_target_words: Count = None
    token_dropout: Fraction = None
    context_dropout: Fraction = None
    batch_size: Count = None
    eval_batch_size: Count = None
    num_workers: int = Field(None, ge=0)
    bucket_multiplier: Count = None

    @model_validator(mode="before")
    @classmethod
    def _tokenizer(cls, node: Any) -> Any:
        """A directory goes with a pretrained tokenizer; a trained one needs room for its
        alphabet (checked before the generic vocab range, to say which tokenizer)."""
        kind = node.get("tokenizer") if isinstance(node, dict) else None
        if kind not in c.TOKENIZER_KINDS:
            return node
        vocab, path = node.get("vocab_size"), node.get("tokenizer_path")
        if (kind == c.PRETRAINED) != (path is not None):
            raise ValueError(
                f"@.tokenizer={kind}, @.tokenizer_path={path}: a tokenizer directory "
                f"goes with @.tokenizer={c.PRETRAINED} and only with it"
            )
        need = c.BPE_MIN_VOCAB if kind == "bpe" else c.WORDPIECE_MIN_VOCAB
        if kind != c.PRETRAINED and type(vocab) is int and vocab < need:
            why = "256 byte symbols" if kind == "bpe" else "the corpus' characters"
            raise ValueError(
                f"@.vocab_size={vocab} is too small for @.tokenizer={kind}: it needs at least "
                f"{need} ({len(c.SPECIAL_TOKENS)} special tokens + {why})"
            )
        return node

    @model_validator(mode="after")
    def _words(self) -> Data:
        low, high = self.min_target_words, self.max_target_words
        if None not in (low, high) and low > high:
            raise ValueError(f"@.min_target_words={low} is out of range; allowed: [0, {high}]")
        return self


class Model(Target):
    WIRED = {k: "set from the data and the task" for k in ("vocab_size", "pad_id")}
    WIRED |= {k: "set from the task group" for k in ("num_topics", "rating_head")}
    WIRED |= {"conversation_bag": "set from the task group"}
    WIRED |= {k: "the data's speaker markers" for k in ("self_id", "other_id")}
    emb_dim: Count = None
    hidden_size: Count = None
    enc_layers: Count = None
    dec_layers: Count = None
    dropout: Fraction = None
    attention: str = None  # a kind of distillab.models.attention (its target checks it)
    attention_heads: Count = None
    bidirectional: bool = None
    # the transformer families' (models/hf_seq2seq.py, models/hf_causal.py)
    layers: Count = None
    attention_heads: Count = None
    ffn_size: Count = None
    max_positions: Count = None
    path: str | None = None

    @model_validator(mode="after")
    def _even(self) -> Model:
        if self.bidirectional is not False and (self.hidden_size or 0) % 2:
            raise ValueError(
                f"@.hidden_size={self.hidden_size} must be even for a bidirectional encoder "
                "(@.bidirectional=true: each direction gets half)"
            )
        check = getattr(resolve(self.target), "check_config", None)
        if callable(check):  # the model's own keys (Seq2Seq: the attention kind, its options)
            check(self.spec())
        return self


class Optimizer(Target):
    WIRED = {"params": "the module passes its parameter groups"}
    lr: float = Field(None, gt=0.0, le=10.0)
    weight_decay: float = Field(None, ge=0.0)
    eps: float = Field(None, ge=0.0)
    betas: tuple[Fraction, Fraction] = Field(None, strict=False)  # a YAML list


class Scheduler(Target):
    WIRED = {"optimizer": "the module passes its optimizer"}
    WIRED |= {"total_steps": "set from the trainer's budget"}
    name: Literal[c.SCHEDULES] = None
    warmup_steps: int = Field(None, ge=0)


class Budget(Node, extra="allow"):
    """A trainer's budget and cadence (the job's trainer, and `teacher.train.trainer`)."""

    max_steps: int = Field(None, ge=-1)
    max_epochs: int | None = Field(None, ge=-1)
    min_steps: int | None = Field(None, ge=0)
    min_epochs: int | None = Field(None, ge=0)
    check_val_every_n_epoch: Count | None = None
    log_every_n_steps: Count | None = None
    num_sanity_val_steps: int | None = Field(None, ge=-1)
    gradient_clip_val: float | None = Field(None, ge=0.0)
    accumulate_grad_batches: Count = None
    val_check_interval: Count | Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    accelerator: Any = None

    @model_validator(mode="after")
    def _accelerator(self) -> Budget:
        from pytorch_lightning.accelerators import AcceleratorRegistry

        names = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
        if isinstance(self.accelerator, str) and self.accelerator not in names:
            raise ValueError(
                f"@.accelerator={self.accelerator!r} is not allowed; choose one of {names}"
            )
        return self


def endless(key: str, budget: dict) -> None:
    if budget.get("max_steps", -1) == -1 and budget.get("max_epochs") == -1:
        raise ValueError(
            f"{key}.max_steps=-1 and {key}.max_epochs=-1: training would never stop; "
            "set one of them"
        )


class Trainer(Budget, Target, title="trainer"):
    WIRED = {"callbacks": "use the callbacks group", "logger": "use the logger group"}
    WIRED |= {"default_root_dir": "the run directory (paths.output_dir)"}
    WIRED |= {"enable_progress_bar": "set from whether the output is a terminal"}

    @model_validator(mode="after")
    def _budget(self) -> Trainer:
        endless("@", self.model_dump(exclude_unset=True))
        return self


class Decoding(Target):
    """A decoding strategy: it checks its own ranges (its constructor is public API)."""

    @model_validator(mode="after")
    def _ranges(self) -> Decoding:
        self_check(self.spec(), "decoding")
        return self


class Weighting(Target):
    """The task weighting: built on the objective's term names (checked on two)."""

    WIRED = {"names": "the objective passes its term names"}

    @model_validator(mode="after")
    def _ranges(self) -> Weighting:
        if not (self.model_extra or {}).get("_partial_"):
            raise ValueError("@._partial_ must be true (the objective passes `names`)")
        self_check(self.spec(), "weighting", names=["ce", "kd"])
        return self


class Task(Node, title="the task (task=single|multi)"):
    topic: Literal[True, False, "auto"]  # a head: on, off, or where the data has its labels
    rating: Literal[True, False, "auto"]
    topic_weight: float = Field(ge=0.0)
    rating_weight: float = Field(ge=0.0)
    conversation_bag: bool
    rating_loss: Target | None  # the gold rating term


class Module(Node, title="the module (module.*)"):
    label_smoothing: Fraction = None  # Seq2SeqModule's (absent: its defaults)
    decode_examples: int = Field(None, ge=0)
    finite_check_every: int = Field(None, ge=1)
    max_decode_len: Count = None


class Student(Node, title="the student"):
    init_from_teacher: bool
    # a transformer student's layer i copies the teacher's layer_map[i] (null: every other)
    layer_map: list[Annotated[int, Field(ge=0)]] | None = None


class Paths(Node, title="paths"):
    output_root: str
    output_dir: str
    cache_dir: str
