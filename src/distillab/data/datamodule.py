"""The LightningDataModule: corpus -> split -> tokenizer -> cached encoded splits -> loaders."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from filelock import FileLock
from torch.utils.data import DataLoader

from distillab.data.batching import BucketBatchSampler, collate
from distillab.data.encoded import DialogueDataset, EncodedSplit, encode_split
from distillab.data.examples import SPLITS, build_examples, clean_conversation, split_conversations
from distillab.data.sources import Corpus
from distillab.data.tokenizer import (
    BOS,
    EOS,
    OTHER,
    PAD,
    SELF,
    UNK,
    load_tokenizer,
    train_tokenizer,
)
from distillab.errors import DataError, check_range
from distillab.utils.io import atomic_write_json, fingerprint


class DialogueDataModule(pl.LightningDataModule):
    """Everything that shapes the tokens is in the data fingerprint; the cache is keyed by it."""

    def __init__(
        self,
        source: Callable[[str | None], Corpus],
        path: str | None = None,
        cache_dir: str = "outputs/cache",
        context_turns: int = 3,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        seed: int = 0,
        max_examples: int | None = None,
        max_train_examples: int | None = None,
        tokenizer: str = "bpe",
        vocab_size: int = 8000,
        min_frequency: int = 2,
        lowercase: bool = True,
        max_source_len: int = 64,
        max_target_len: int = 32,
        min_target_words: int = 1,
        max_target_words: int = 64,
        dedupe: bool = True,
        drop_empty_turns: bool = True,
        token_dropout: float = 0.0,
        context_dropout: float = 0.0,
        balanced_topics: bool = False,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        bucket_multiplier: int = 50,
    ) -> None:
        super().__init__()
        check_range("data.context_turns", context_turns, 1, 64)
        check_range("data.val_fraction", val_fraction, 0.0, 0.5, low_inclusive=False)
        check_range("data.test_fraction", test_fraction, 0.0, 0.5, low_inclusive=False)
        if max_examples is not None:
            check_range("data.max_examples", max_examples, 10, None)
        if max_train_examples is not None:
            check_range("data.max_train_examples", max_train_examples, 1, None)
        check_range("data.vocab_size", vocab_size, 100, 1_000_000)
        check_range("data.max_source_len", max_source_len, 4, 4096)
        check_range("data.max_target_len", max_target_len, 2, 4096)
        check_range("data.min_target_words", min_target_words, 0, max_target_words)
        check_range("data.token_dropout", token_dropout, 0.0, 1.0, high_inclusive=False)
        check_range("data.context_dropout", context_dropout, 0.0, 1.0, high_inclusive=False)
        check_range("data.batch_size", batch_size, 1, None)
        check_range("data.eval_batch_size", eval_batch_size, 1, None)
        self.source, self.path, self.cache_dir = source, path, Path(cache_dir)
        self.split_args = dict(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        self.split_args["max_examples"] = max_examples
        self.max_train_examples = max_train_examples
        self.example_args = dict(
            min_target_words=min_target_words,
            max_target_words=max_target_words,
            dedupe=dedupe,
            context_turns=context_turns,
        )
        self.tok_args = dict(
            kind=tokenizer, vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase
        )
        self.drop_empty_turns = drop_empty_turns
        self.context_turns, self.max_source_len, self.max_target_len = (
            context_turns,
            max_source_len,
            max_target_len,
        )
        self.token_dropout, self.context_dropout = token_dropout, context_dropout
        self.balanced_topics, self.seed = balanced_topics, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.bucket_multiplier = num_workers, bucket_multiplier
        self.tokenizer = None
        self.datasets: dict[str, DialogueDataset] = {}

    # ---- preparation (idempotent; cached on disk by fingerprint) ---------------------------
    def load(self) -> None:
        """Read, split, tokenise (or reuse the cache); called before the model is built."""
        if self.tokenizer is not None:
            return
        corpus = self.source(self.path)
        self.corpus_path, self.corpus_sha256 = corpus.path, corpus.sha256
        self.fingerprint = fingerprint(
            corpus.sha256,
            self.split_args,
            self.example_args,
            self.tok_args,
            self.drop_empty_turns,
            "v1",
        )
        cache = self.cache_dir / "data" / self.fingerprint
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache) + ".lock"):
            if not (cache / "info.json").exists():
                self._build_cache(corpus, cache)
        self.tokenizer = load_tokenizer(str(cache / "tokenizer"))
        self.info = json.loads((cache / "info.json").read_text())
        self.topics: list[str] = self.info["topics"]
        with np.load(cache / "encoded.npz") as z:
            self.splits = {
                name: EncodedSplit(**{k: z[f"{name}.{k}"] for k in EncodedSplit.__annotations__})
                for name in SPLITS
            }
        self.vocab_hash = fingerprint(sorted(self.tokenizer.get_vocab().items()))
        ids = self.tokenizer.convert_tokens_to_ids([PAD, UNK, BOS, EOS, SELF, OTHER])
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.self_id, self.other_id = ids
        self.train_rows = self._train_rows()
        for name in SPLITS:
            self.datasets[name] = self._dataset(name, augment=name == "train")

    def _dataset(self, name: str, augment: bool) -> DialogueDataset:
        return DialogueDataset(
            self.splits[name],
            self.context_turns,
            self.max_source_len,
            self.max_target_len,
            self.self_id,
            self.other_id,
            self.unk_id,
            token_dropout=self.token_dropout if augment else 0.0,
            context_dropout=self.context_dropout if augment else 0.0,
            seed=self.seed,
            rows=self.train_rows if name == "train" else None,
        )

    def _train_rows(self) -> np.ndarray | None:
        """A seeded subset of training examples (`data.max_train_examples`): fewer labelled
        pairs for the student while the tokenizer and the splits stay those of the full data."""
        n = len(self.splits["train"].examples)
        if self.max_train_examples is None or self.max_train_examples >= n:
            return None
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n, self.max_train_examples, replace=False))

    def _build_cache(self, corpus: Corpus, cache: Path) -> None:
        convs = [clean_conversation(c, self.drop_empty_turns) for c in corpus.conversations]
        convs = [c for c in convs if len(c.turns) >= 2]
        if not convs:
            raise DataError(f"{corpus.path}: no usable conversations (none has 2 non-empty turns)")
        splits = split_conversations(convs, **self.split_args)
        examples = {n: build_examples(splits[n], **self.example_args) for n in SPLITS}
        for name in SPLITS:
            if not examples[name]:
                raise DataError(
                    f"{corpus.path}: the {name} split has no examples after filtering "
                    f"(data.min_target_words/max_target_words, data.max_examples)"
                )
        train_texts = [t for c in splits["train"] for t in c.turns]
        tok = train_tokenizer(train_texts, **self.tok_args)
        topics = ["none"] + sorted({c.topic for c in convs if c.topic})
        index = {t: i for i, t in enumerate(topics)}
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}."))
        try:
            tok.save_pretrained(str(tmp / "tokenizer"))
            arrays = {}
            for name in SPLITS:
                enc = encode_split(splits[name], examples[name], tok, index)
                arrays.update({f"{name}.{k}": v for k, v in enc.arrays().items()})
            np.savez(tmp / "encoded.npz", **arrays)
            counts = {
                n: {"conversations": len(splits[n]), "examples": len(examples[n])} for n in SPLITS
            }
            atomic_write_json(tmp / "info.json", {"topics": topics, "splits": counts})
            shutil.rmtree(cache, ignore_errors=True)
            tmp.rename(cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def describe(self) -> dict:
        """What a run saves about its data: enough to tell whether two runs saw the same tokens."""
        return {
            "fingerprint": self.fingerprint,
            "path": self.corpus_path,
            "sha256": self.corpus_sha256,
            "vocab_size": len(self.tokenizer),
            "vocab_hash": self.vocab_hash,
            "max_train_examples": self.max_train_examples,
            "train_examples_used": len(self.datasets["train"]),
            "num_topics": len(self.topics),
            "splits": self.info["splits"],
        }

    # ---- loaders --------------------------------------------------------------------------
    def _loader(self, name: str, train: bool, ds: DialogueDataset | None = None) -> DataLoader:
        ds = ds or self.datasets[name]
        sampler = BucketBatchSampler(
            ds.lengths,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            bucket_multiplier=self.bucket_multiplier,
            weights=ds.topic_weights() if (train and self.balanced_topics) else None,
        )
        return DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=partial(collate, pad_id=self.pad_id, bos_id=self.bos_id, eos_id=self.eos_id),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def plain_loader(self, name: str) -> DataLoader:
        """A split's examples in a fixed order without augmentation (for teacher passes)."""
        return self._loader(name, train=False, ds=self._dataset(name, augment=False))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
