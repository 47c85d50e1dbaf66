"""Names that the config checks and the layers above them share (tokenizer kinds, divergences,
schedules, built-in loss terms): defined here, at the bottom, and imported
up by `data`, `losses`, `models` and `modules`."""

from __future__ import annotations

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SELF, OTHER = "<self>", "<other>"  # speaker markers, relative to the speaker of the target turn
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, SELF, OTHER]
TRAINED = ("bpe", "wordpiece")
PRETRAINED = "pretrained"  # data.tokenizer_path: a Hugging Face tokenizer directory
TOKENIZER_KINDS = (*TRAINED, PRETRAINED)
BPE_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # byte-level BPE starts from all 256 byte symbols
WORDPIECE_MIN_VOCAB = 100  # the special tokens plus the characters of any real corpus

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd", "tvd")  # losses.divergences implements them
CACHED_DIVERGENCES = ("forward_kl",)  # the top-k + tail-draw cache has an estimator for these
BUILT_IN_TERMS = ("ce", "kd", "topic", "rating", "topic_kd", "rating_kd")
SCHEDULES = ("constant_with_warmup", "linear", "cosine")
TEACHER_OUTPUTS = ("online", "cached")

AUTO = "auto"  # teacher.ckpt: look the teacher up in (or train it into) the registry
DISTILL_JOBS = ("distillab.jobs.distill.run", "distillab.jobs.quickstart.run")
SOURCES_NEEDING_PATH = ("distillab.data.jsonl_source", "distillab.data.sources.jsonl_source")
MAX_SEED = 2**32 - 1  # pl.seed_everything's range
