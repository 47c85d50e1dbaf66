"""The tables: schemas of nodes without a `_target_` (every key known, required ones
present) and ranges of target nodes' keys (applied where the key is present). A new config key
or group is added here."""

from __future__ import annotations

from distillab.data.tokenizer import KINDS as TOKENIZERS
from distillab.data.tokenizer import SPECIAL_TOKENS
from distillab.losses.divergences import DIVERGENCES
from distillab.models.attention import ATTENTION_KINDS
from distillab.modules.optim import SCHEDULES
from distillab.validate.fields import (
    Field,
    boolean,
    fraction,
    integer,
    listing,
    mapping,
    number,
    string,
)

AUTO = "auto"  # teacher.ckpt: look the teacher up in (or train it into) the registry
DISTILL_JOBS = ("distillab.jobs.distill.run", "distillab.jobs.quickstart.run")
TEACHER_OUTPUTS = ("online", "cached")
BPE_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # byte-level BPE starts from all 256 byte symbols
WORDPIECE_MIN_VOCAB = 100  # the special tokens plus the characters of any real corpus
MAX_SEED = 2**32 - 1  # pl.seed_everything's range
SOURCES_NEEDING_PATH = (
    "distillab.data.jsonl_source",
    "distillab.data.sources.jsonl_source",
)  # data=jsonl: data.path is required


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
    "conversation_bag": boolean(),
    "rating_loss": mapping(null=True),  # the gold rating term, by `_target_`
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
    "head_temperature": number(null=True, required=False),
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
    "head_bag_len": integer(1, 1_000_000),
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
    | {k: "set from the task group" for k in ("num_topics", "rating_head", "conversation_bag")},
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
