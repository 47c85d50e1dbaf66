"""The LightningDataModule: corpus -> split -> tokenizer -> cached encoded splits -> loaders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from distillab.data.batching import bucket_loader, collate
from distillab.data.encoded import DialogueDataset, EncodedSplit, subset_rows
from distillab.data.examples import SPLITS
from distillab.data.prepare import build_encoded_corpus
from distillab.data.sources import Corpus
from distillab.data.tokenizer import (
    PRETRAINED,
    load_tokenizer,
    pretrained_tokenizer,
    special_ids,
    tokenizer_identity,
    vocab_hash,
)
from distillab.utils.artefacts import build_once
from distillab.utils.io import fingerprint


class DialogueDataModule(pl.LightningDataModule):
    """Everything that shapes the examples a model sees is in the data fingerprint (see
    `load`); the encoded corpus is cached by the narrower corpus key."""

    @staticmethod
    def check_config(node: dict, key: str = "data") -> int | None:
        """The files the config names (`distillab.config` calls it before any work): a
        pretrained tokenizer's directory. Returns that tokenizer's vocabulary size."""
        if node.get("tokenizer") != PRETRAINED:
            return None
        return len(pretrained_tokenizer(node["tokenizer_path"], f"{key}.tokenizer_path"))

    def __init__(
        self,
        source: Callable[[str | None], Corpus],
        path: str | None = None,
        cache_dir: str = "outputs/cache",
        context_turns: int = 3,
        head_turns: int = 3,
        head_bag_len: int = 4096,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        seed: int = 0,
        max_examples: int | None = None,
        max_train_examples: int | None = None,
        tokenizer: str = "bpe",
        tokenizer_path: str | None = None,
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
        conversation_bag: bool = False,
        turns: bool = False,
    ) -> None:
        super().__init__()
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
        self.tokenizer_path = tokenizer_path
        self.tok_args = dict(
            kind=tokenizer, vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase
        )
        self.drop_empty_turns = drop_empty_turns
        self.context_turns, self.max_source_len, self.max_target_len = (
            context_turns,
            max_source_len,
            max_target_len,
        )
        self.head_turns, self.head_bag_len = head_turns, head_bag_len
        self.token_dropout, self.context_dropout = token_dropout, context_dropout
        self.balanced_topics, self.seed = balanced_topics, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.bucket_multiplier = num_workers, bucket_multiplier
        self.conversation_bag = conversation_bag  # batches carry whole conversations
        self.turns = turns  # batches carry the sources' turns (an attention reads them)
        self.tokenizer = None
        self.datasets: dict[str, DialogueDataset] = {}
        self.resume_position: tuple[int, int] | None = None  # (epoch, batches) to continue at

    # ---- preparation (idempotent; cached on disk by fingerprint) ---------------------------
    def example_settings(self) -> dict:
        """What turns the encoded corpus into the examples a model sees (besides the corpus
        key): how many context turns, what the task heads read, and where sources and targets
        are cut."""
        return {
            "context_turns": self.context_turns,
            "head_turns": self.head_turns,
            "head_bag_len": self.head_bag_len,
            "max_source_len": self.max_source_len,
            "max_target_len": self.max_target_len,
        }

    def load(self) -> None:
        """Read, split, tokenise (or reuse the cache); called before the model is built.

        Two keys come out of it:

        - `corpus_key` keys the encoded-corpus cache (`<cache_dir>/data/<corpus_key>`): the
          corpus bytes, the split, the example filters and the tokenizer settings, i.e. what
          shapes the tokenised turns. Cutting lengths does not change them, so runs that
          differ only in `max_source_len`/`max_target_len` share that cache.
        - `fingerprint` names the examples a model is trained and evaluated on: the corpus
          key plus `example_settings()` (context turns, source and target cuts). Runs record
          it, and every downstream cache (teacher registry, teacher outputs, seq-KD decodes)
          is keyed by it. It leaves out what only touches training batches and is keyed
          separately where it matters: augmentation (`token_dropout`, `context_dropout`;
          caches are built from un-augmented inputs and refuse it), the training subset
          (`max_train_examples`: caches key the training rows themselves), sampling and
          batch sizes.
        """
        if self.tokenizer is not None:
            return
        if self.tokenizer_path is not None:  # keyed by what it does, not where it lies
            tok = pretrained_tokenizer(self.tokenizer_path)
            self.tok_args = {"kind": PRETRAINED, "identity": tokenizer_identity(tok)}
        corpus = self.source(self.path)
        self.corpus_path, self.corpus_sha256 = corpus.path, corpus.sha256
        corpus_spec = {
            "format": "encoded-corpus-v2",
            "corpus_sha256": corpus.sha256,
            "split": self.split_args,
            "examples": self.example_args,
            "tokenizer": self.tok_args,
            "drop_empty_turns": self.drop_empty_turns,
        }
        self.corpus_key = fingerprint(corpus_spec)
        self.fingerprint = fingerprint(self.corpus_key, self.example_settings(), "examples-v2")
        cache = build_once(
            self.cache_dir / "data" / self.corpus_key,
            corpus_spec,
            partial(
                build_encoded_corpus,
                corpus,
                split_args=self.split_args,
                example_args=self.example_args,
                tok_args=self.tok_args,
                tokenizer_path=self.tokenizer_path,
                drop_empty_turns=self.drop_empty_turns,
            ),
        )
        self.tokenizer = load_tokenizer(str(cache / "tokenizer"))
        self.info = json.loads((cache / "info.json").read_text())
        self.topics: list[str] = self.info["topics"]
        with np.load(cache / "encoded.npz") as z:
            self.splits = {
                name: EncodedSplit(**{k: z[f"{name}.{k}"] for k in EncodedSplit.__annotations__})
                for name in SPLITS
            }
        self.vocab_hash = vocab_hash(self.tokenizer)
        ids = special_ids(self.tokenizer)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.self_id, self.other_id = ids
        n_train = len(self.splits["train"].examples)
        self.train_rows = subset_rows(n_train, self.max_train_examples, self.seed)
        for name in SPLITS:
            self.datasets[name] = self._dataset(name, augment=name == "train")

    def with_train_budget(self, max_train_examples: int | None) -> DialogueDataModule:
        """A datamodule over the same loaded splits and tokenizer with a training set of its
        own: `max_train_examples` of the training split (a seeded subset; None: all). The
        registry teacher trains on its budget, a distilled student on its own copy."""
        other = copy.copy(self)
        other.max_train_examples = max_train_examples
        n_train = len(self.splits["train"].examples)
        other.train_rows = subset_rows(n_train, max_train_examples, self.seed)
        other.datasets = {**self.datasets, "train": other._dataset("train", augment=True)}
        other.resume_position = None
        return other

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
            head_turns=self.head_turns,
            bag_len=self.head_bag_len,
        )

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def describe(self) -> dict:
        """What a run saves about its data: enough to tell whether two runs saw the same tokens."""
        return {
            "fingerprint": self.fingerprint,
            "corpus_key": self.corpus_key,
            **self.example_settings(),
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
    def _loader(
        self, name: str, train: bool, ds: DialogueDataset | None = None, ranked: bool = True
    ) -> DataLoader:
        """`ranked`: under a distributed trainer, this rank's share (`BucketBatchSampler`)."""
        ds = ds or self.datasets[name]
        trainer = self.trainer if ranked else None
        resume_at = self.resume_position if train else None
        if train:
            self.resume_position = None  # one pass resumes; later ones start afresh
        return bucket_loader(
            ds,
            partial(
                collate,
                pad_id=self.pad_id,
                bos_id=self.bos_id,
                eos_id=self.eos_id,
                conversation_bag=self.conversation_bag,
                speakers=(self.self_id, self.other_id) if self.turns else None,
            ),
            self.batch_size if train else self.eval_batch_size,
            train=train,
            seed=self.seed,
            bucket_multiplier=self.bucket_multiplier,
            weights=ds.topic_weights() if (train and self.balanced_topics) else None,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            num_workers=self.num_workers,
            resume_at=resume_at,
        )

    # ---- resuming mid-epoch: the position in the training pass travels in checkpoints -------
    def state_dict(self) -> dict:
        """The epoch and how many of its batches were trained on (Lightning saves this in every
        checkpoint), so a resumed run continues the pass with the batches it had not seen."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"epoch": trainer.current_epoch, "batches": done}

    def load_state_dict(self, state_dict: dict) -> None:
        if "epoch" in state_dict:
            self.resume_position = (int(state_dict["epoch"]), int(state_dict["batches"]))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def plain_loader(self, name: str) -> DataLoader:
        """A split's examples in a fixed order without augmentation (for teacher passes)."""
        ds = self._dataset(name, augment=False)
        return self._loader(name, train=False, ds=ds, ranked=False)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
