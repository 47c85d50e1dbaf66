"""Compression: unstructured magnitude pruning (gradual or one-shot), structured removal of
hidden units (GRU) or heads and feed-forward units (transformers), dynamic int8 quantization, and the step that applies them after training and
writes ``compression.json`` (:mod:`distillab.compress.step`)."""

from distillab.compress.callback import GradualPruning
from distillab.compress.pruning import MagnitudePruning, fold, fold_state_dict
from distillab.compress.quantize import quantize_int8
from distillab.compress.schedule import cubic_sparsity
from distillab.compress.structured import HiddenUnitPruning
from distillab.compress.units import HeadPruning

__all__ = [
    "GradualPruning",
    "HeadPruning",
    "HiddenUnitPruning",
    "MagnitudePruning",
    "cubic_sparsity",
    "fold",
    "fold_state_dict",
    "quantize_int8",
]
