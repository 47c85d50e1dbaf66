"""ONNX export of the transformer families (`hf_seq2seq`, `hf_causal`): an encoder graph and a
decoder-step graph that reads and returns the key/value cache as flat tensors.

The state between graphs is a list of named arrays, all batch-first (so a beam reorders every
one by its first axis); `config.json` says which the encoder graph returns (`encoder_outputs`),
which start empty (`empty`: ``[batch, heads, 0, head_dim]``), which the step reads
(`step_inputs`) and which it returns updated (`carried`, as ``new_<name>``):

- seq2seq: the encoder states and mask, each decoder layer's cross-attention keys/values
  (computed once by the encoder graph), each decoder layer's self-attention keys/values
  (empty at first, one position longer per step);
- causal: the context's attention mask, the next position per row, each layer's keys/values
  (the context's, from the encoder graph, one position longer per step).

The step graph wraps the flat tensors in `transformers`' public cache classes and runs the
model's own forward, so the graph computes what the PyTorch model computes.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from distillab.models.hf_causal import positions

FORMAT = "distillab-onnx-kv-v1"
OPSET = 17
BATCH = {0: "batch"}


def kv_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def pairs(flat: tuple[Tensor, ...]) -> list[tuple[Tensor, Tensor]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def flatten(cache) -> list[Tensor]:
    """A DynamicCache's keys and values, layer by layer."""
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


class Banned(nn.Module):
    """Greedy's choice inside the step graph: argmax with padding and BOS never chosen."""

    def __init__(self, vocab: int, banned: list[int]) -> None:
        super().__init__()
        ban = torch.zeros(vocab)
        ban[banned] = float("-inf")
        self.register_buffer("ban", ban, persistent=False)

    def forward(self, logits: Tensor) -> Tensor:
        return (logits + self.ban).argmax(-1)


class Seq2SeqEncoder(nn.Module):
    """``(src, src_mask) -> (enc, enc_mask, cross keys/values...)``: the mask as int64."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, ...]:
        from transformers import DynamicCache, EncoderDecoderCache

        mask = src_mask.long()
        enc = self.model.net.get_encoder()(input_ids=src, attention_mask=mask).last_hidden_state
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.model.net(  # one decoder pass fills the cross-attention cache (token-independent)
            encoder_outputs=(enc,),
            attention_mask=mask,
            decoder_input_ids=src[:, :1],
            use_cache=True,
            **{self.model.cache_kw: cache},
        )
        return (enc, mask, *flatten(cache.cross_attention_cache))


class Seq2SeqStep(nn.Module):
    """``(prev, enc, enc_mask, cross..., past...) -> (logits, next_token, new past...)``."""

    def __init__(self, model: nn.Module, banned: list[int], layers: int) -> None:
        super().__init__()
        self.model, self.pick, self.layers = model, Banned(model.vocab_size, banned), layers

    def forward(self, prev: Tensor, enc: Tensor, src_mask: Tensor, *kv: Tensor):
        from transformers import DynamicCache, EncoderDecoderCache

        n = 2 * self.layers
        cache = EncoderDecoderCache(DynamicCache(pairs(kv[n:])), DynamicCache(pairs(kv[:n])))
        out = self.model.net(
            encoder_outputs=(enc,),
            attention_mask=src_mask,
            decoder_input_ids=prev.unsqueeze(1),
            use_cache=True,
            **{self.model.cache_kw: cache},
        )
        logits = out.logits[:, -1].float()
        return (logits, self.pick(logits), *flatten(cache.self_attention_cache))


class CausalEncoder(nn.Module):
    """``(src, src_mask) -> (mask, position, past...)``: the context in the cache."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, ...]:
        from transformers import DynamicCache

        mask = src_mask.long()
        cache = DynamicCache()
        self.model.net.transformer(
            input_ids=src,
            attention_mask=mask,
            position_ids=positions(mask),
            use_cache=True,
            **{self.model.cache_kw: cache},
        )
        return (mask, mask.sum(1), *flatten(cache))


class CausalStep(nn.Module):
    """``(prev, mask, position, past...) -> (logits, next_token, mask, position, past...)``."""

    def __init__(self, model: nn.Module, banned: list[int]) -> None:
        super().__init__()
        self.model, self.pick = model, Banned(model.vocab_size, banned)

    def forward(self, prev: Tensor, mask: Tensor, position: Tensor, *kv: Tensor):
        from transformers import DynamicCache

        cache = DynamicCache(pairs(kv))
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        out = self.model.net(
            input_ids=prev.unsqueeze(1),
            attention_mask=mask,
            position_ids=position.unsqueeze(1),
            use_cache=True,
            **{self.model.cache_kw: cache},
        )
        logits = out.logits[:, -1].float()
        return (logits, self.pick(logits), mask, position + 1, *flatten(cache))


def export(
    graph: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape arithmetic and caches
        torch.onnx.export(
            graph.eval(),
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={n: a for n, a in axes.items() if n in inputs + outputs},
        )
    graph.eval()  # export restores the wrapper's (and so the model's) training flag


def kv_axes(names: list[str], time: str) -> dict[str, dict[int, str]]:
    return {n: {0: "batch", 2: time} for n in names}


# the inputs and outputs both families' graphs share
IO_AXES = {
    "src": {0: "batch", 1: "src_len"},
    "src_mask": {0: "batch", 1: "src_len"},
    "prev": BATCH,
    "logits": BATCH,
    "next_token": BATCH,
}


def export_pair(
    out: Path,
    encoder: tuple[nn.Module, tuple, list[str]],
    step: tuple[nn.Module, tuple, list[str]],
    carried: list[str],
    axes: dict,
) -> None:
    """`encoder.onnx` ((src, src_mask) -> its outputs) and `step.onnx` (its inputs -> logits,
    next_token and `new_<name>` for each carried state); `encoder`/`step`: (graph, example
    args, names); `axes`: the family's dynamic axes beyond `IO_AXES`."""
    axes = {**IO_AXES, **axes}
    (enc_graph, enc_args, state), (step_graph, step_args, step_in) = encoder, step
    export(enc_graph, enc_args, out / "encoder.onnx", ["src", "src_mask"], state, axes)
    step_out = ["logits", "next_token", *[f"new_{n}" for n in carried]]
    export(step_graph, step_args, out / "step.onnx", step_in, step_out, axes)


def export_seq2seq(model: nn.Module, out: Path, banned: list[int]) -> dict:
    """`encoder.onnx` and `step.onnx` of an `HFSeq2Seq`; returns its part of config.json."""
    layers = model.net.model.decoder.layers
    cross, past = kv_names("cross", len(layers)), kv_names("past", len(layers))
    src = torch.full((2, 5), 4, dtype=torch.long)
    mask = torch.ones(2, 5, dtype=torch.bool)
    enc_graph, step_graph = Seq2SeqEncoder(model), Seq2SeqStep(model, banned, len(layers))
    with torch.no_grad():
        enc, long_mask, *cross_kv = enc_graph(src, mask)
        prev = torch.full((2,), 2, dtype=torch.long)
        # a past of 3 positions to trace with (the runtime starts from 0)
        past_kv = [torch.zeros(2, t.size(1), 3, t.size(3)) for t in cross_kv]
        for layer, (k, v) in zip(layers, pairs(tuple(past_kv)), strict=True):
            heads = layer.self_attn.q_proj.out_features // layer.self_attn.head_dim
            k.resize_(2, heads, 3, layer.self_attn.head_dim).normal_()
            v.resize_(2, heads, 3, layer.self_attn.head_dim).normal_()
    axes = {
        "enc": {0: "batch", 1: "src_len"},
        "enc_mask": {0: "batch", 1: "src_len"},
        **kv_axes(cross, "src_len"),
        **kv_axes(past, "past_len"),
        **kv_axes([f"new_{n}" for n in past], "new_len"),
    }
    state = ["enc", "enc_mask", *cross]
    step_in = ["prev", "enc", "enc_mask", *cross, *past]
    args = (prev, enc, long_mask, *cross_kv, *past_kv)
    export_pair(out, (enc_graph, (src, mask), state), (step_graph, args, step_in), past, axes)
    empty = {n: [t.size(1), t.size(3)] for n, t in zip(past, past_kv, strict=True)}
    return {"encoder_outputs": state, "empty": empty, "step_inputs": step_in[1:], "carried": past}


def export_causal(model: nn.Module, out: Path, banned: list[int]) -> dict:
    """`encoder.onnx` (the context into the cache) and `step.onnx` of an `HFCausal`."""
    past = kv_names("past", len(model.net.transformer.h))
    src = torch.full((2, 5), 4, dtype=torch.long)
    mask = torch.ones(2, 5, dtype=torch.bool)
    enc_graph, step_graph = CausalEncoder(model), CausalStep(model, banned)
    with torch.no_grad():
        long_mask, position, *past_kv = enc_graph(src, mask)
    prev = torch.full((2,), 2, dtype=torch.long)
    axes = {
        "mask": {0: "batch", 1: "past_len"},
        "new_mask": {0: "batch", 1: "new_len"},
        "position": BATCH,
        "new_position": BATCH,
        **kv_axes(past, "past_len"),
        **kv_axes([f"new_{n}" for n in past], "new_len"),
    }
    state = ["mask", "position", *past]  # all carried from step to step
    args = (prev, long_mask, position, *past_kv)
    export_pair(
        out, (enc_graph, (src, mask), state), (step_graph, args, ["prev", *state]), state, axes
    )
    return {"encoder_outputs": state, "empty": {}, "step_inputs": state, "carried": state}


def export_graphs(model: nn.Module, out: Path, banned: list[int], family) -> dict:
    """The family's graphs (``family``: `export_seq2seq` or `export_causal`) of a float copy
    of ``model`` on CPU in eval mode; int8 copies by onnxruntime; config.json's graph part."""
    from distillab.export.onnx import quantize_graphs

    model = copy.deepcopy(model).float().cpu().eval()
    parts = family(model, out, banned)
    fp32 = {"encoder": "encoder.onnx", "step": "step.onnx"}
    return {"format": FORMAT, **parts, "files": {"fp32": fp32, "int8": quantize_graphs(out, fp32)}}
