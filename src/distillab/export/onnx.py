"""Write a self-contained deployment directory for a :class:`~distillab.models.Seq2Seq`.

Layout (``config.json`` names the files)::

    encoder.onnx  step.onnx            fp32: encode a batch; one decoder step
    encoder.int8.onnx  step.int8.onnx  onnxruntime dynamic int8 quantization of the same
    tokenizer/tokenizer.json           the run's tokenizer (read by ``tokenizers``)
    config.json                        special ids, context assembly, sizes, file names

The decoder state travels between the graphs as four arrays: the attention memory
(``values``, ``scorer``, ``bias``, see :class:`~distillab.models.attention.AttentionMemory`)
and the decoder's ``hidden`` state, as in the model's decoding protocol.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from distillab.models.attention import AttentionMemory
from distillab.models.seq2seq import DecoderState

FORMAT = "distillab-onnx-v1"
STATE = ["values", "scorer", "bias", "hidden"]
OPSET = 17


class EncoderGraph(nn.Module):
    """``(src, src_mask) -> (values, scorer, bias, hidden)``: the model's ``encode``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, ...]:
        state = self.model.encode(src, src_mask)
        return (*state.memory, state.hidden)


class StepGraph(nn.Module):
    """``(prev, values, scorer, bias, hidden) -> (logits, hidden, next_token)``: the model's
    ``step``, and the greedy choice (``argmax`` of the logits with the ``banned`` ids never
    chosen), so a greedy decoder fetches one id per row instead of ``[N, V]`` logits and
    runs no array ops of its own between steps."""

    def __init__(self, model: nn.Module, banned: list[int]) -> None:
        super().__init__()
        self.model = model
        ban = torch.zeros(model.vocab_size)
        ban[banned] = float("-inf")
        self.register_buffer("ban", ban, persistent=False)

    def forward(self, prev: Tensor, values: Tensor, scorer: Tensor, bias: Tensor, hidden: Tensor):
        state = DecoderState(AttentionMemory(values, scorer, bias), hidden, prev)
        logits, new = self.model.step(prev, state)
        return logits, new.hidden, (logits + self.ban).argmax(-1)


def export_graphs(model: nn.Module, out_dir: Path, banned: list[int]) -> dict[str, str]:
    """``encoder.onnx`` and ``step.onnx`` of ``model`` (a float copy on CPU, eval mode);
    ``banned``: the ids greedy decoding never picks (padding, BOS)."""
    model = copy.deepcopy(model).float().cpu().eval()
    src = torch.full((1, 5), 4, dtype=torch.long)
    mask = torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        state = model.encode(src, mask)
    batch_time = {0: "batch", 1: "src_len"}
    # the scorer's layout is the attention kind's own (additive [B, Tk, H], else [B, H, Tk]);
    # a kind that reads the turns finds them in the graph, from the source's speaker markers
    scorer_axis = model.decoder.attention.scorer_src_axis
    memory_axes = {
        "values": batch_time,
        "scorer": {0: "batch", scorer_axis: "src_len"},
        "bias": {0: "batch", 2: "src_len"},
        "hidden": {1: "batch"},
    }
    files = {"encoder": "encoder.onnx", "step": "step.onnx"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on the GRU and on shape arithmetic
        enc = EncoderGraph(model).eval()
        torch.onnx.export(
            enc,
            (src, mask),
            str(out_dir / files["encoder"]),
            dynamo=False,
            opset_version=OPSET,
            input_names=["src", "src_mask"],
            output_names=STATE,
            dynamic_axes={"src": batch_time, "src_mask": batch_time, **memory_axes},
        )
        enc.eval()  # export restores the wrapper's (and so the model's) training flag
        step = StepGraph(model, banned).eval()
        prev = torch.full((1,), 2, dtype=torch.long)
        torch.onnx.export(
            step,
            (prev, *state.memory, state.hidden),
            str(out_dir / files["step"]),
            dynamo=False,
            opset_version=OPSET,
            input_names=["prev", *STATE],
            output_names=["logits", "new_hidden", "next_token"],
            dynamic_axes={
                "prev": {0: "batch"},
                **memory_axes,
                "logits": {0: "batch"},
                "new_hidden": {1: "batch"},
                "next_token": {0: "batch"},
            },
        )
        step.eval()
    return files


def quantize_graphs(out_dir: Path, files: dict[str, str]) -> dict[str, str]:
    """int8 copies (weights int8, activations quantized on the fly) by onnxruntime."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = {}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process (shape inference) is for CNNs
    try:
        for name, file in files.items():
            int8[name] = file.replace(".onnx", ".int8.onnx")
            quantize_dynamic(
                str(out_dir / file), str(out_dir / int8[name]), weight_type=QuantType.QInt8
            )
    finally:
        root.setLevel(level)
    return int8


def export_model(
    model: nn.Module, out_dir: str | Path, tokenizer: Any, settings: dict[str, Any]
) -> Path:
    """Write the deployment directory; ``settings``: the special ids (``pad_id``, ``bos_id``,
    ``eos_id``, ``unk_id``, ``self_id``, ``other_id``), how contexts are assembled
    (``context_turns``, ``max_source_len``) and the reply length (``max_len``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = export_graphs(model, out, [int(settings["pad_id"]), int(settings["bos_id"])])
    int8 = quantize_graphs(out, fp32)
    tokenizer.save_pretrained(str(out / "tokenizer"))
    config = {
        "format": FORMAT,
        "vocab_size": int(model.vocab_size),
        **{k: int(v) for k, v in settings.items()},
        "files": {"fp32": fp32, "int8": int8, "tokenizer": "tokenizer/tokenizer.json"},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def export_settings(
    tokenizer: Any,
    *,
    pad_id: int,
    bos_id: int,
    eos_id: int,
    context_turns: int,
    max_source_len: int,
    max_len: int,
) -> dict[str, int]:
    """The settings :func:`export_model` needs: the special ids (the marker and unknown ids
    read from `tokenizer`) and the context's shape, as the run that trained the model used
    them (from its data module, or from a checkpoint's hyperparameters and run config)."""
    from distillab.data.tokenizer import OTHER, SELF, UNK

    unk, self_id, other = tokenizer.convert_tokens_to_ids([UNK, SELF, OTHER])
    return {
        "pad_id": int(pad_id),
        "bos_id": int(bos_id),
        "eos_id": int(eos_id),
        "unk_id": unk,
        "self_id": self_id,
        "other_id": other,
        "context_turns": int(context_turns),
        "max_source_len": int(max_source_len),
        "max_len": int(max_len),
    }


def data_export_settings(dm: Any, max_len: int) -> dict[str, int]:
    """:func:`export_settings` from a loaded ``DialogueDataModule``."""
    return export_settings(
        dm.tokenizer,
        pad_id=dm.pad_id,
        bos_id=dm.bos_id,
        eos_id=dm.eos_id,
        context_turns=dm.context_turns,
        max_source_len=dm.max_source_len,
        max_len=max_len,
    )
