"""Data: corpus sources, splits, tokenizer, cached encoding and bucketed loaders.

`DialogueDataModule` (a Lightning module) is imported on first use, so that what needs only
the tokenizer or a source (`distillab-chat`, `distillab-serve`) starts without Lightning.
"""

from typing import Any

from distillab.data.sources import Conversation, Corpus, chitchat_source, jsonl_source

__all__ = ["Conversation", "Corpus", "DialogueDataModule", "chitchat_source", "jsonl_source"]


def __getattr__(name: str) -> Any:
    if name == "DialogueDataModule":
        from distillab.data.datamodule import DialogueDataModule

        return DialogueDataModule
    raise AttributeError(f"module 'distillab.data' has no attribute {name!r}")
