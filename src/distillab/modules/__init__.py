"""LightningModules: a seq2seq trainer for teachers and students, and distillation."""

from distillab.modules.seq2seq import Seq2SeqModule

__all__ = ["Seq2SeqModule"]
