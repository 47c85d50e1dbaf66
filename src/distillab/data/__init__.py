"""Data: corpus sources, splits, tokenizer, cached encoding and bucketed loaders."""

from distillab.data.datamodule import DialogueDataModule
from distillab.data.sources import Conversation, Corpus, chitchat_source, jsonl_source

__all__ = ["Conversation", "Corpus", "DialogueDataModule", "chitchat_source", "jsonl_source"]
