"""Every config error surfaces here, before any work: no data is read or tokenised, no teacher
trained, nothing written outside the fresh run directory.

`validate(cfg)` runs in `distillab-train` before the job and raises `ConfigError` with one line
naming the key, the value and what is allowed:

- **nodes with a `_target_`** (data and its source, model, optimizer, scheduler, trainer,
  teacher, logger and callbacks entries, `distill.objective.terms.*`, any other top-level
  target such as `decoding`): the target must import, the node's keys must be parameters of it
  (closest names suggested), and values must match its plain annotations (int, float, bool,
  str, Literal, Optional of those);
- **nodes without one** (module, task, distill, student, paths, teacher.train, extra_teachers
  entries, the top-level scalars): the schemas below;
- **ranges and choices** (`*_RANGES`, `check_distill_objective`), **combinations**
  (`check_teacher_outputs`, distillation jobs only), **files** (data.path, teacher
  checkpoints) and the **output root** (created and written to, last).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import tempfile
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from distillab.data.tokenizer import KINDS as TOKENIZERS
from distillab.data.tokenizer import PRETRAINED, SPECIAL_TOKENS, pretrained_tokenizer
from distillab.decoding import build_strategy
from distillab.errors import ConfigError, check_choice, check_range
from distillab.losses.divergences import CACHED_DIVERGENCES, DIVERGENCES
from distillab.losses.objective import check_distill_objective
from distillab.models.attention import ATTENTION_KINDS
from distillab.modules.optim import SCHEDULES

AUTO = "auto"  # teacher.ckpt: look the teacher up in (or train it into) the registry
DISTILL_JOBS = ("distillab.jobs.distill.run", "distillab.jobs.quickstart.run")
TEACHER_OUTPUTS = ("online", "cached")
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
BPE_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # byte-level BPE starts from all 256 byte symbols
WORDPIECE_MIN_VOCAB = 100  # the special tokens plus the characters of any real corpus
MAX_SEED = 2**32 - 1
SOURCES_NEEDING_PATH = (
    "distillab.data.jsonl_source",
    "distillab.data.sources.jsonl_source",
)  # pl.seed_everything's range


# ---- fields: one key's type, range or choices ---------------------------------------------
@dataclass(frozen=True)
class Field:
    kind: type | None = None  # int, float (any number), bool, str, dict, list; None: anything
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple | None = None
    null: bool = False  # None allowed
    required: bool = True  # in schemas: the key must be present

    def check(self, key: str, value: Any) -> None:
        if value is None:
            if not self.null:
                raise ConfigError(f"{key}=null is not allowed; it must be {self.describe()}")
            return
        if self.kind is not None and not is_a(value, self.kind):
            raise ConfigError(f"{key}={value!r} must be {self.describe()}")
        if self.choices is not None:
            check_choice(key, value, self.choices)
        if self.low is not None or self.high is not None:
            check_range(
                key,
                value,
                self.low,
                self.high,
                low_inclusive=self.low_inclusive,
                high_inclusive=self.high_inclusive,
            )

    def describe(self) -> str:
        what = KIND_NAMES.get(self.kind, "set")
        return what + (" or null" if self.null else "")


KIND_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a mapping",
    list: "a list",
}


def is_a(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def integer(low=None, high=None, **kw) -> Field:
    return Field(int, low, high, **kw)


def number(low=None, high=None, **kw) -> Field:
    return Field(float, low, high, **kw)


def fraction(**kw) -> Field:  # [0, 1)
    return Field(float, 0.0, 1.0, high_inclusive=False, **kw)


def boolean(**kw) -> Field:
    return Field(bool, **kw)


def string(choices: tuple | None = None, **kw) -> Field:
    return Field(str, choices=choices, **kw)


def mapping(**kw) -> Field:
    return Field(dict, **kw)


def listing(**kw) -> Field:
    return Field(list, **kw)


# ---- schemas of nodes without a _target_ --------------------------------------------------
TOP_LEVEL = {
    "data": mapping(),
    "model": mapping(),
    "task": mapping(),
    "optimizer": mapping(),
    "scheduler": mapping(),
    "trainer": mapping(),
    "logger": mapping(null=True, required=False),
    "callbacks": mapping(null=True, required=False),
    "paths": mapping(),
    "distill": mapping(),
    "teacher": mapping(),
    "module": mapping(),
    "student": mapping(),
    "extra_teachers": listing(null=True, required=False),
    "experiment_name": Field(),  # names the run directory: any scalar
    "job": string(),
    "seed": integer(0, MAX_SEED),
    "threads": integer(1, None, null=True, required=False),
    "optimized_metric": Field(null=True, required=False),  # check_optimized_metric
    "resume": string(null=True, required=False),  # a run directory: check_resume
    "compress": mapping(required=False),
    "weighting": mapping(required=False),
}
MODULE = {  # Seq2SeqModule's loss and evaluation decoding (it has defaults for all)
    "label_smoothing": fraction(required=False),
    "decode_examples": integer(0, required=False),
    "max_decode_len": integer(1, required=False),
}
TASK = {  # a head: true, false or auto (on where the data has its labels)
    "topic": Field(choices=(True, False, "auto")),
    "rating": Field(choices=(True, False, "auto")),
    "topic_weight": number(0.0),
    "rating_weight": number(0.0),
}
STUDENT = {"init_from_teacher": boolean()}
PATHS = {"output_root": string(), "output_dir": string(), "cache_dir": string()}
DISTILL = {
    "objective": mapping(),
    "seqkd": mapping(),
    "onpolicy": mapping(),
    "teacher_outputs": string(TEACHER_OUTPUTS),
    "topk": integer(1),
    "tail_samples": integer(0),
}
OBJECTIVE = {  # ranges: check_distill_objective
    "alpha": number(),
    "temperature": number(),
    "alpha_end": number(null=True, required=False),
    "temperature_end": number(null=True, required=False),
    "terms": mapping(null=True, required=False),
    "divergence": string(tuple(DIVERGENCES), required=False),
    "jsd_beta": number(0.0, 1.0, required=False),
    "topic_kd": number(0.0, required=False),
    "rating_kd": number(0.0, required=False),
}
ONPOLICY = {
    "enabled": boolean(),
    "lmbda": number(0.0, 1.0),
    "sampling": mapping(),
    "seed": integer(0, MAX_SEED),
}
SEQKD = {"enabled": boolean(), "decoding": mapping(), "gold_fraction": number(0.0, 1.0)}
TEACHER_TRAIN = {  # the teacher's own training config (jobs/teacher.py reads every key)
    "seed": integer(0, MAX_SEED),
    "model": mapping(),
    "module": mapping(),
    "optimizer": mapping(),
    "scheduler": mapping(),
    "decoding": mapping(),
    "trainer": mapping(),
    "data": mapping(),
}
TEACHER_DATA = {"max_train_examples": integer(1, None, null=True)}  # its data budget only
COMPRESS = {  # conf/compress: none | prune | quantize | hybrid
    "prune": boolean(),
    "quantize": boolean(),
    "export": boolean(),
    "sparsity": fraction(),
    "mode": string(),  # a key of `pruners`
    "pruners": mapping(),
    "schedule": mapping(null=True),
    "finetune_steps": integer(0),
    "eval_inputs": integer(1),
}
SCHEDULE = {"start_step": integer(0), "end_step": integer(0), "frequency": integer(1)}
EXTRA_TEACHER_FIELDS = {"ckpt": string(), "weight": number(0.0, required=False)}

# ---- ranges of target nodes' keys (applied where the key is present) ----------------------
# data: the same checks as DialogueDataModule's constructor (same messages), plus the rest
DATA_RANGES = {
    "context_turns": integer(1, 64),
    "head_turns": integer(0, 64),
    "val_fraction": number(0.0, 0.5, low_inclusive=False),
    "test_fraction": number(0.0, 0.5, low_inclusive=False),
    "max_examples": integer(10, None, null=True),
    "max_train_examples": integer(1, None, null=True),
    "tokenizer": string(TOKENIZERS),
    "vocab_size": integer(100, 1_000_000),
    "min_frequency": integer(0),
    "max_source_len": integer(4, 4096),
    "max_target_len": integer(2, 4096),
    "max_target_words": integer(1),
    "token_dropout": fraction(),
    "context_dropout": fraction(),
    "batch_size": integer(1),
    "eval_batch_size": integer(1),
    "num_workers": integer(0),
    "bucket_multiplier": integer(1),
    "path": string(null=True),
    "tokenizer_path": string(null=True),
}
MODEL_RANGES = {
    "emb_dim": integer(1),
    "hidden_size": integer(1),
    "enc_layers": integer(1),
    "dec_layers": integer(1),
    "dropout": fraction(),
    "attention": string(ATTENTION_KINDS),
}
OPTIMIZER_RANGES = {
    "lr": number(0.0, 10.0, low_inclusive=False),
    "weight_decay": number(0.0),
    "eps": number(0.0),
}
SCHEDULER_RANGES = {"name": string(SCHEDULES), "warmup_steps": integer(0)}
TRAINER_RANGES = {
    "max_steps": integer(-1),
    "max_epochs": integer(-1, None, null=True),
    "min_steps": integer(0, None, null=True),
    "min_epochs": integer(0, None, null=True),
    "check_val_every_n_epoch": integer(1, None, null=True),
    "log_every_n_steps": integer(1, None, null=True),
    "num_sanity_val_steps": integer(-1, None, null=True),
    "gradient_clip_val": number(0.0, None, null=True),
    "accumulate_grad_batches": integer(1),
}
TEACHER_RANGES = {"weight": number(0.0), "ckpt": string()}

# keys of target nodes that distillab sets itself: a value in the config would be ignored
WIRED = {
    "model": {k: "set from the data and the task" for k in ("vocab_size", "pad_id")}
    | {k: "set from the task group" for k in ("num_topics", "rating_head")},
    "optimizer": {"params": "the module passes its parameter groups"},
    "scheduler": {
        "optimizer": "the module passes its optimizer",
        "total_steps": "set from the trainer's budget",
    },
    "trainer": {
        "callbacks": "use the callbacks group",
        "logger": "use the logger group",
        "default_root_dir": "the run directory (paths.output_dir)",
        "enable_progress_bar": "set from whether the output is a terminal",
    },
}


# ---- targets ------------------------------------------------------------------------------
def locate(path: str) -> Any:
    """The object at a dotted path (the longest importable module prefix, then attributes)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                continue  # not a module: try a shorter prefix
            raise
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def import_target(key: str, path: Any) -> Any:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key}={path!r} must be a dotted path to a class or function")
    try:
        return locate(path)
    except Exception as e:  # noqa: BLE001 - any import failure is a config error here
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise ConfigError(f"{key}={path!r} cannot be imported ({reason})") from None


def parameters(target: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """(named parameters, whether it accepts any keyword) of a class or function."""
    if inspect.isclass(target):
        owner = next((k for k in target.__mro__ if "__init__" in vars(k)), object)
        if owner is object or (owner.__module__, owner.__name__) == (
            "torch.nn.modules.module",
            "Module",
        ):
            return {}, False  # no constructor of its own: takes no settings
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}, True  # cannot tell: accept anything
    params = {
        n: p
        for n, p in sig.parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return params, any_kw


PLAIN_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def plain_annotation(ann: Any) -> tuple[set, list, bool] | None:
    """(plain types, Literal values, None allowed) of an annotation built only from int, float,
    bool, str, None and Literal (Union / Optional / `|` of them); None when it is not plain."""
    if isinstance(ann, str):
        text = ann.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            inner = plain_annotation(text[len("Optional[") : -1])
            return None if inner is None else (inner[0], inner[1], True)
        parts = [p.strip() for p in text.split("|")]
        if not all(p in PLAIN_NAMES for p in parts):
            return None
        return {PLAIN_NAMES[p] for p in parts if p != "None"}, [], "None" in parts
    if ann in (int, float, bool, str):
        return {ann}, [], False
    if ann is None or ann is type(None):
        return set(), [], True
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return set(), list(typing.get_args(ann)), False
    if origin is typing.Union or origin is types.UnionType:
        kinds, literals, null = set(), [], False
        for arg in typing.get_args(ann):
            sub = plain_annotation(arg)
            if sub is None:
                return None
            kinds |= sub[0]
            literals += sub[1]
            null = null or sub[2]
        return kinds, literals, null
    return None


def check_annotation(key: str, value: Any, ann: Any) -> None:
    plain = plain_annotation(ann)
    if plain is None or ann is inspect.Parameter.empty:
        return
    kinds, literals, null = plain
    if value is None and null:
        return
    if value is not None and any(is_a(value, k) for k in kinds):
        return
    if any(value == lit and type(value) is type(lit) for lit in literals):
        return
    if float in kinds:
        kinds = kinds - {int}
    what = [KIND_NAMES[k] for k in (int, float, bool, str) if k in kinds]
    if literals:
        what.append(f"one of {literals}")
    if null:
        what.append("null")
    raise ConfigError(f"{key}={value!r} must be {' or '.join(what)}")


def is_node(value: Any) -> bool:
    return isinstance(value, (dict, list))


def unknown_key(key: str, value: Any, valid: list[str], owner: str) -> ConfigError:
    """`key` is not a setting of `owner`: suggest the closest valid names (difflib)."""
    *parent, name = key.split(".")
    prefix = ".".join(parent) + "." if parent else ""
    shown = key if is_node(value) else f"{key}={value!r}"
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(prefix + c for c in close) + "?"
    else:
        hint = "valid keys: " + ", ".join(sorted(valid))
    return ConfigError(f"{shown} is not a setting of {owner}; {hint}")


def check_target_keys(
    key: str,
    node: dict,
    target: Any,
    name: str,
    extra: tuple[str, ...] = (),
    wired: Mapping[str, str] | None = None,
) -> None:
    """Every key of `node` is a parameter of `target` (or in `extra`); plain types match."""
    params, any_kw = parameters(target)
    wired = wired or {}
    valid = [p for p in params if p not in wired] + list(extra)
    for k, v in node.items():
        if k in HYDRA_KEYS or k in extra:
            continue
        if k in wired:
            raise ConfigError(f"{key}.{k} cannot be set here: {wired[k]}")
        if k not in params:
            if any_kw:
                continue
            raise unknown_key(f"{key}.{k}", v, valid, name)
        if not is_node(v):
            check_annotation(f"{key}.{k}", v, params[k].annotation)


def check_target(
    key: str,
    node: Any,
    extra: tuple[str, ...] = (),
    wired: Mapping[str, str] | None = None,
) -> Any:
    """A node with a `_target_`: importable, known keys, plain types. Returns the target."""
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key} must be a config with a _target_ (a class or function)")
    target = import_target(f"{key}._target_", node["_target_"])
    check_target_keys(key, node, target, node["_target_"], extra, wired)
    return target


def check_fields(key: str, node: Mapping, fields: Mapping[str, Field]) -> None:
    """Ranges and choices of the keys present (target nodes: their defaults are the code's)."""
    for k, f in fields.items():
        if k in node:
            f.check(f"{key}.{k}", node[k])


def check_schema(key: str, node: Any, schema: Mapping[str, Field], what: str) -> None:
    """A node without a `_target_`: known keys, required keys present, each field valid."""
    if not isinstance(node, dict):
        raise ConfigError(f"{key}={node!r} must be a mapping ({what} settings)")
    prefix = f"{key}." if key else ""
    for k, v in node.items():
        if k not in schema:
            raise unknown_key(prefix + k, v, list(schema), what)
    for k, f in schema.items():
        if k in node:
            f.check(prefix + k, node[k])
        elif f.required:
            raise ConfigError(f"{prefix}{k} is missing ({what} needs it)")


# ---- groups -------------------------------------------------------------------------------
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


def check_teacher(cfg: dict, trainer_target: Any) -> None:
    teacher = cfg["teacher"]
    target = check_target("teacher", teacher, extra=("train",))
    check_fields("teacher", teacher, TEACHER_RANGES)
    train = teacher.get("train")
    if "ckpt" not in parameters(target)[0]:
        train = None  # only checkpoint teachers are trained by the registry (presets may set it)
    if train is None:
        if teacher.get("ckpt") == AUTO:
            raise ConfigError("teacher.train is missing: teacher.ckpt=auto trains it from there")
    else:
        check_teacher_train(train, cfg["trainer"], trainer_target)
    for i, extra in enumerate(cfg.get("extra_teachers") or []):
        key = f"extra_teachers[{i}]"
        if not isinstance(extra, dict):
            raise ConfigError(f"{key}={extra!r} must be a mapping {{ckpt: PATH, weight: W}}")
        name = extra.get("_target_", teacher["_target_"])  # default: the main teacher's kind
        extra_target = import_target(f"{key}._target_", name) if "_target_" in extra else target
        check_target_keys(key, extra, extra_target, name)
        for k, f in EXTRA_TEACHER_FIELDS.items():
            if k in extra:
                f.check(f"{key}.{k}", extra[k])
            elif f.required:
                raise ConfigError(f"{key}.{k} is missing: an extra teacher needs a checkpoint path")


def check_teacher_train(train: Any, job_trainer: dict, trainer_target: Any) -> None:
    key = "teacher.train"
    check_schema(key, train, TEACHER_TRAIN, "the teacher's training config (teacher.train)")
    check_model(f"{key}.model", train["model"])
    check_module(f"{key}.module", train["module"])
    check_optimizer(f"{key}.optimizer", train["optimizer"])
    check_scheduler(f"{key}.scheduler", train["scheduler"])
    check_decoding(f"{key}.decoding", train["decoding"])
    budget = train["trainer"]
    if not isinstance(budget, dict):
        raise ConfigError(f"{key}.trainer={budget!r} must be a mapping (trainer settings)")
    check_target_keys(
        f"{key}.trainer", budget, trainer_target, job_trainer["_target_"], wired=WIRED["trainer"]
    )
    check_trainer_values(f"{key}.trainer", budget)
    check_budget(f"{key}.trainer", {**job_trainer, **budget})  # its budget over the job's
    check_schema(f"{key}.data", train["data"], TEACHER_DATA, "the teacher's data budget")


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
    )
    for name, spec in terms.items():
        check_target(f"distill.objective.terms.{name}", spec, extra=("weight",))
    check_schema("distill.seqkd", distill["seqkd"], SEQKD, "sequence-level KD")
    check_decoding("distill.seqkd.decoding", distill["seqkd"]["decoding"])
    check_schema("distill.onpolicy", distill["onpolicy"], ONPOLICY, "on-policy distillation")
    check_decoding("distill.onpolicy.sampling", distill["onpolicy"]["sampling"])


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
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def check_decoding(key: str, decoding: dict) -> None:
    """A decoding strategy config: its keys, and its ranges (strategies are cheap to build)."""
    check_target(key, decoding)
    build_strategy(decoding, key)


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


def check_compress(compress: Any, trainer: dict) -> None:
    """conf/compress: known keys and ranges, the pruning method a plug-in, a schedule that
    fits its phase (training, or the fine-tuning steps), gradual pruning only by a method
    that masks in place."""
    check_schema(
        "compress", compress, COMPRESS, "compression (compress=none|prune|quantize|hybrid)"
    )
    pruners = compress["pruners"]
    check_choice("compress.mode", compress["mode"], tuple(pruners))
    for name, node in pruners.items():
        check_target(f"compress.pruners.{name}", node)
    check_fields(
        f"compress.pruners.{compress['mode']}",
        pruners[compress["mode"]],
        {"scope": string(("layer", "global"))},
    )
    schedule, finetune = compress["schedule"], compress["finetune_steps"]
    if schedule is not None:
        check_schema("compress.schedule", schedule, SCHEDULE, "the pruning schedule")
        check_range(
            "compress.schedule.end_step", schedule["end_step"], schedule["start_step"], None
        )
        budget, where = (
            (finetune, "compress.finetune_steps")
            if finetune > 0
            else (trainer.get("max_steps", -1), "trainer.max_steps")
        )
        if is_a(budget, int) and budget > 0 and schedule["end_step"] > budget:
            raise ConfigError(
                f"compress.schedule.end_step={schedule['end_step']} is past {where}={budget}: "
                "the schedule would not finish"
            )
    if compress["prune"] and (schedule is not None or finetune > 0):
        method = import_target(
            f"compress.pruners.{compress['mode']}._target_", pruners[compress["mode"]]["_target_"]
        )
        if not getattr(method, "gradual", False):
            raise ConfigError(
                f"compress.mode={compress['mode']} prunes in one step after training: "
                "set compress.schedule=null and compress.finetune_steps=0"
            )


EVAL = {  # conf/eval.yaml (distillab-eval)
    "ckpt": string(),
    "compress": mapping(),
    "paths": mapping(),
    "experiment_name": Field(),
    "job": string(),
    "seed": integer(0, MAX_SEED),
    "threads": integer(1, None, null=True),
    "plots": boolean(),
    "num_dialogues": integer(1),
}


def validate_eval(cfg: DictConfig) -> None:
    """`distillab-eval`'s config: its keys, the checkpoint and its run's config, the
    compression settings (resolved in the training run's config, whose trainer a fine-tuning
    phase uses), the output root."""
    from distillab.jobs.evaluate import job_config

    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError("ckpt is required: distillab-eval ckpt=PATH (a distillab checkpoint)")
    ckpt = cfg.ckpt
    if not isinstance(ckpt, str) or not Path(ckpt).is_file():
        raise ConfigError(f"ckpt={ckpt}: no such checkpoint file")
    top = {k: v for k, v in cfg.items() if k != "compress"}
    c = resolved(OmegaConf.create(top))
    check_schema("", {**c, "compress": {}}, EVAL, "distillab-eval")
    check_schema("paths", c["paths"], PATHS, "paths")
    check_job(c["job"])
    job = resolved(job_config(cfg))
    compress = job["compress"]
    check_compress(compress, job["trainer"])
    if compress["schedule"] is not None and compress["finetune_steps"] == 0:
        raise ConfigError(
            "compress.schedule is set but distillab-eval has no training to prune during: "
            "set compress.schedule=null (one step) or compress.finetune_steps > 0"
        )
    check_output_root(c["paths"]["output_root"])


# ---- files and directories ----------------------------------------------------------------
def check_files(cfg: dict, distillation: bool) -> None:
    path = cfg["data"].get("path")
    source = (cfg["data"].get("source") or {}).get("_target_")
    if not path and source in SOURCES_NEEDING_PATH:
        raise ConfigError(
            "data.path is required with data=jsonl (a .jsonl file, one conversation a line)"
        )
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"data.path={path}: no such file")
    if not distillation:
        return  # the teachers are not used
    teacher_files(cfg["teacher"], "teacher")
    ckpt = cfg["teacher"].get("ckpt")
    if ckpt is not None and ckpt != AUTO and not Path(ckpt).is_file():
        raise ConfigError(f"teacher.ckpt={ckpt}: no such checkpoint file (a path, or auto)")
    for i, extra in enumerate(cfg.get("extra_teachers") or []):
        key = f"extra_teachers[{i}].ckpt"
        if extra["ckpt"] == AUTO:
            raise ConfigError(
                f"{key}=auto is not allowed: an extra teacher needs a checkpoint path"
            )
        if not Path(extra["ckpt"]).is_file():
            raise ConfigError(f"{key}={extra['ckpt']}: no such checkpoint file")


def teacher_files(node: dict, key: str) -> None:
    """A teacher plug-in checks its own files (e.g. `HFTeacher`: a local model directory with
    a usable tokenizer) through a `check_config(node, key)` hook on its class."""
    hook = getattr(import_target(f"{key}._target_", node["_target_"]), "check_config", None)
    if callable(hook):
        hook(node, key)


def check_output_root(root: str) -> None:
    """Created if absent (the run directory lies under it) and written to (a temp file)."""
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise ConfigError(
            f"paths.output_root={root}: cannot create or write there ({e.strerror or e})"
        ) from None


def check_run_dir(cfg: dict) -> None:
    """`resume=RUN_DIR` must name a resumable run; without it, the run directory must not hold
    another run already (nothing of an existing run is overwritten), except this job's own
    interrupted run, which it continues (a requeued job). DDP ranks > 0 share rank 0's run
    directory."""
    from distillab.jobs.resume import check_resumable, check_run_dir_reuse

    if cfg.get("resume"):
        check_resumable(cfg["resume"])
        return
    check_run_dir_reuse(cfg)


def check_writable_dir(key: str, path: str) -> None:
    """A directory that jobs create later: nothing is created here, but the closest existing
    ancestor must be a writable directory (and `path` itself not a file)."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        why = "not a directory" if not p.is_dir() else "not writable"
        raise ConfigError(f"{key}={path}: cannot create it ({p} is {why})")


# ---- the whole config ---------------------------------------------------------------------
def resolved(cfg: DictConfig) -> dict:
    """The config as plain containers, interpolations resolved; `???` and unresolvable values
    are config errors naming their key."""
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if not missing:
            return OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf's interpolation and resolver errors
        key = getattr(e, "full_key", None) or "config"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{key}: cannot resolve its value ({reason})") from None
    raise ConfigError(f"{missing[0]} is required (it is ???): set it, e.g. {missing[0]}=...")


def check_top_level(cfg: dict) -> list[str]:
    """Top-level keys: the schema's, plus any other node with a `_target_` (e.g. `decoding`),
    checked against its target. Returns those extra target nodes."""
    extra = [k for k, v in cfg.items() if k not in TOP_LEVEL and isinstance(v, dict)]
    extra = [k for k in extra if "_target_" in cfg[k]]
    check_schema("", {k: v for k, v in cfg.items() if k not in extra}, TOP_LEVEL, "distillab")
    return extra


def check_optimized_metric(value: Any) -> None:
    """A metric name (`val/ppl`, `compression/size_bytes_compressed`), or a list of them for a
    multi-objective sweep."""
    names = value if isinstance(value, list) else [value]
    if value is None:
        return
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"optimized_metric={value!r} must be a metric name (e.g. val/ppl) or a list of "
            "names (multi-objective)"
        )


def check_job(job: str) -> None:
    obj = import_target("job", job)
    if not callable(obj):
        raise ConfigError(f"job={job!r} is not a function of the config")


GROUP_CHECKS: dict[str, Callable[[Any], None]] = {
    "data": check_data,
    "model": lambda node: check_model("model", node),
    "task": lambda node: check_schema("task", node, TASK, "the task (task=single|multi)"),
    "optimizer": lambda node: check_optimizer("optimizer", node),
    "scheduler": lambda node: check_scheduler("scheduler", node),
    "module": lambda node: check_module("module", node),
    "student": lambda node: check_schema("student", node, STUDENT, "the student"),
    "paths": lambda node: check_schema("paths", node, PATHS, "paths"),
    "logger": lambda node: check_entries("logger", node),
    "callbacks": lambda node: check_entries("callbacks", node),
    "distill": check_distill,
    "weighting": check_weighting,
}


def validate(cfg: DictConfig) -> None:
    """Raise `ConfigError` (one line: key, value, what is allowed) for the first config error;
    run before any work. Only the output root is touched (created, a temp file written)."""
    c = resolved(cfg)
    for key in check_top_level(c):
        check_target(key, c[key])
    check_job(c["job"])
    check_optimized_metric(c.get("optimized_metric"))
    check_decoding("decoding", c["decoding"])
    teacher_path = c.get("teacher", {}).get("path")
    if teacher_path is not None and c["data"].get("tokenizer_path") == teacher_path:
        teacher_files(c["teacher"], "teacher")  # before the data: name the teacher's key
    for group, check in GROUP_CHECKS.items():
        if group in c:
            check(c[group])
    trainer_target = check_trainer(c["trainer"])
    check_teacher(c, trainer_target)
    if "compress" in c:
        check_compress(c["compress"], c["trainer"])
    distillation = c["job"] in DISTILL_JOBS
    if distillation:
        check_teacher_outputs(c)
    check_files(c, distillation)
    check_output_root(c["paths"]["output_root"])
    check_run_dir(c)
    check_writable_dir("paths.cache_dir", c["paths"]["cache_dir"])
    if c["data"].get("cache_dir") not in (None, c["paths"]["cache_dir"]):
        check_writable_dir("data.cache_dir", c["data"]["cache_dir"])
