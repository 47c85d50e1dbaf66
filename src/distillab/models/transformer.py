"""What the Hugging Face model families (`hf_seq2seq`, `hf_causal`) share.

A family wraps one `transformers` model (`self.net`), built from its size keys or loaded from a
local `save_pretrained` directory (`path`: the saved config decides the sizes), with the run's
vocabulary (the embeddings are resized to it). On top: the task heads on pooled context
states, the decoding protocol's key/value cache handling, and student-from-teacher layer
copying. Eager attention throughout: the only implementation that returns attention maps,
which `Seq2SeqOutput.attn` and attention transfer read.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from distillab.data.batch import Batch, ConversationBag
from distillab.errors import ConfigError
from distillab.models.heads import TaskHeads, masked_mean, with_conversation
from distillab.models.init import check_layer_map, copy_matching, layer_renames, same_family
from distillab.models.transformer_units import UnitGroup, apply_kept

EAGER = "eager"
WEIGHTS = ("*.safetensors", "*.bin")


def model_kind(path: str, key: str = "teacher.path") -> str:
    """`seq2seq` or `causal`; a clear `ConfigError` for anything that is not a local model
    directory of one of those kinds (checked at start by `validate`)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    p = Path(path)
    if not p.is_dir():
        raise ConfigError(
            f"{key}={path}: no such directory (hub names are not downloaded; save the model "
            "and its tokenizer with save_pretrained and give that directory)"
        )
    if not (p / "config.json").is_file():
        raise ConfigError(f"{key}={path}: not a transformers model directory (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a bad config
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{key}={path}: cannot read its config.json ({reason})") from None
    if not any(any(p.glob(w)) for w in WEIGHTS):
        raise ConfigError(f"{key}={path}: no weights there (*.safetensors or *.bin)")
    if config.model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return "seq2seq"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise ConfigError(
        f"{key}={path}: a {config.model_type!r} model is neither a seq2seq nor a causal "
        "language model (AutoModelForSeq2SeqLM / AutoModelForCausalLM)"
    )


def load_pretrained(path: str, kind: str, key: str = "model.path") -> nn.Module:
    """A local `save_pretrained` model of `kind` (`seq2seq` | `causal`), eager attention."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
    from transformers.utils import logging as hf_logging

    check_kind(path, kind, key)
    hf_logging.disable_progress_bar()  # "Loading weights" bars: noise in the run's log
    cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    return cls.from_pretrained(path, local_files_only=True, attn_implementation=EAGER)


def check_kind(path: str, kind: str, key: str) -> None:
    found = model_kind(path, key)
    if found != kind:
        raise ConfigError(f"{key}={path}: a {found} model; this model family needs a {kind} one")


def cache_keyword(net: nn.Module) -> str:
    """The forward argument that takes the key/value cache: `cache` in recent transformers 5
    releases, `past_key_values` before (still accepted there, with a deprecation warning)."""
    params = inspect.signature(net.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def float_logits(logits: Tensor) -> Tensor:
    """Decoding steps return float32 scores (e.g. under bf16 autocast)."""
    return logits if logits.dtype == torch.float32 else logits.float()


def check_heads(hidden_size: int, attention_heads: int) -> None:
    """A width the heads split evenly (each family's config would fail later, less clearly)."""
    if hidden_size % attention_heads:
        raise ValueError(
            f"model.hidden_size={hidden_size} must be a multiple of "
            f"model.attention_heads={attention_heads}"
        )


class HFModel(nn.Module):
    """Base of the transformer families: `net` (a `transformers` model) with the run's
    vocabulary, task heads on pooled context states, layer copying from a teacher.

    A subclass implements `context_states(src, src_mask) -> [B, Ts, H]` (what the heads pool),
    `stacks() -> {parameter prefix of a layer stack: its depth}` (what `init_from` maps) and
    `unit_groups()` (what structured pruning shrinks).
    """

    def __init__(
        self,
        net: nn.Module,
        vocab_size: int,
        pad_id: int,
        attn_layer: int,
        num_topics: int,
        rating_head: bool,
        conversation_bag: bool,
        kept_units: list[int] | None = None,
    ) -> None:
        super().__init__()
        if net.get_input_embeddings().num_embeddings != vocab_size:
            net.resize_token_embeddings(vocab_size)  # a saved model + the pipeline's ids
        self.net = net
        self.vocab_size, self.pad_id = int(vocab_size), int(pad_id)
        self.hidden_size = int(net.config.hidden_size)
        self.attn_layer = int(attn_layer)
        self.conversation_bag = conversation_bag
        width = self.hidden_size
        in_size = width + (net.get_input_embeddings().embedding_dim + 1 if conversation_bag else 0)
        self.task_heads = TaskHeads(in_size, width, num_topics, rating_head)
        self.cache_kw = cache_keyword(net)
        self.max_positions = int(getattr(net.config, "max_position_embeddings", 0) or 0)
        if kept_units:  # a structurally pruned checkpoint: its shapes before its weights
            apply_kept(self.unit_groups(), list(kept_units))

    KIND = ""  # what `path` must hold: "seq2seq" | "causal"

    @classmethod
    def check_config(cls, node: dict, key: str = "model") -> None:
        """`validate`'s hook, at start: `path`, where set, is a local model of this kind."""
        if node.get("path"):
            check_kind(str(node["path"]), cls.KIND, f"{key}.path")

    # ---- what a subclass provides ----------------------------------------------------------
    def context_states(self, src: Tensor, src_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def stacks(self) -> dict[str, int]:
        raise NotImplementedError

    def unit_groups(self) -> list[UnitGroup]:
        """Every layer's attention heads and feed-forward units (structured pruning), in a
        fixed order: `kept_units` lists their sizes in it."""
        raise NotImplementedError

    def structure(self) -> dict[str, Any]:
        """The model-config keys that rebuild this model's shapes (a shrunk one's included)."""
        return {"kept_units": [g.size for g in self.unit_groups()]}

    # ---- shared -----------------------------------------------------------------------------
    def check_length(self, length: int) -> None:
        """A clear error where learned positions would run out (an index error inside)."""
        if self.max_positions and length > self.max_positions:
            raise ValueError(
                f"{length} positions do not fit this model's max_positions="
                f"{self.max_positions}: raise model.max_positions or shorten "
                "data.max_source_len / data.max_target_len"
            )

    def forward_batch(self, batch: Batch) -> Any:
        """The teacher-forced pass on a collated batch (what modules and teachers score)."""
        return self(batch.src, batch.src_mask, batch.tgt_in, *batch.head_input, batch.conversation)

    @property
    def has_heads(self) -> bool:
        return self.task_heads.any

    def head_outputs(
        self, states: Tensor, mask: Tensor, conv: ConversationBag | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """(topic logits, rating) from context `states [B, T, H]` pooled over `mask`."""
        if not self.has_heads:
            return None, None
        features = masked_mean(states, mask)
        if self.conversation_bag:
            features = with_conversation(features, self.net.get_input_embeddings().weight, conv)
        return self.task_heads(features)

    def heads(
        self, src: Tensor, src_mask: Tensor, conv: ConversationBag | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """The task heads alone (a context pass, no decoding): e.g. a cached teacher's."""
        return self.head_outputs(self.context_states(src, src_mask), src_mask, conv)

    def task_outputs(
        self,
        src: Tensor,
        states: Tensor,
        head_src: Tensor | None,
        head_src_mask: Tensor | None,
        src_mask: Tensor,
        conv: ConversationBag | None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """The heads on `states` (the source's), or on a pass over `head_src` when it is
        another input (`data.head_turns`)."""
        if head_src is None or head_src is src or head_src_mask is None or not self.has_heads:
            return self.head_outputs(states, src_mask, conv)
        return self.heads(head_src, head_src_mask, conv)

    def init_from(self, teacher: nn.Module, layer_map: list[int] | None = None) -> list[str]:
        """Student from teacher (same family, same width): each stack's layer `i` copies the
        teacher's layer `layer_map[i]` (default: evenly strided, every other layer from a
        teacher twice as deep); embeddings, positions, norms and heads copied where shapes
        match. Returns what was set."""
        same_family(self, teacher)
        assert isinstance(teacher, HFModel)
        names = [n for n, _ in self.named_parameters()]
        rename: dict[str, str] = {}
        theirs = teacher.stacks()
        for prefix, depth in self.stacks().items():
            chosen = check_layer_map(layer_map, depth, theirs[prefix], prefix.rstrip("."))
            rename |= layer_renames(names, prefix, chosen)
        return copy_matching(self, teacher, rename)
