"""Which export a model family gets: a registry keyed by the model class (the GRU `Seq2Seq`:
its encoder and GRU step, :mod:`distillab.export.onnx`; the transformer families: encoder and
key/value-cache step, :mod:`distillab.export.kv`). A new family adds a row here."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from distillab.export import kv
from distillab.export.onnx import export_model
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq
from distillab.models.seq2seq import Seq2Seq


def export_transformer(
    model: nn.Module, out_dir: str | Path, tokenizer: Any, settings: dict[str, Any], family
) -> Path:
    """The deployment directory of a transformer family (as :func:`export_model`'s layout:
    graphs fp32 and int8, tokenizer, config.json with the settings and the state's names)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs = kv.export_graphs(
        model, out, [int(settings["pad_id"]), int(settings["bos_id"])], family
    )
    tokenizer.save_pretrained(str(out / "tokenizer"))
    graphs["files"]["tokenizer"] = "tokenizer/tokenizer.json"
    config = {"vocab_size": int(model.vocab_size), **{k: int(v) for k, v in settings.items()}}
    (out / "config.json").write_text(json.dumps({**config, **graphs}, indent=2) + "\n")
    return out


EXPORTS: dict[type, Callable[..., Path]] = {
    Seq2Seq: export_model,
    HFSeq2Seq: partial(export_transformer, family=kv.export_seq2seq),
    HFCausal: partial(export_transformer, family=kv.export_causal),
}


def export_any(model: nn.Module, out_dir: str | Path, tokenizer: Any, settings: dict) -> Path:
    """Export ``model`` with its family's exporter (the nearest registered base class)."""
    for cls in type(model).__mro__:
        if cls in EXPORTS:
            return EXPORTS[cls](model, out_dir, tokenizer, settings)
    raise TypeError(f"no ONNX export for {type(model).__name__}; known: {list(EXPORTS)}")
