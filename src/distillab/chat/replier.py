"""What answers in a chat: a `Replier` turns a source (token ids built the way training built
them) into response token ids. A distillab checkpoint is one; an exported ONNX directory
(compression/export) plugs in as another class with the same two members, chosen by
`load_replier` from what the path is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from omegaconf import OmegaConf

from distillab.decoding import Beam, Greedy, Sample, build_strategy
from distillab.errors import ConfigError
from distillab.export.generate import Row, Sampling, generate


@dataclass(frozen=True)
class ContextSettings:
    """How training built sources (the run's `data.*`): a replier must be fed the same way."""

    context_turns: int
    max_source_len: int
    max_target_len: int


class Replier(Protocol):
    """Anything that answers: `settings` says how to build its sources, `tokenizer` how to
    turn text into ids and back, `reply(src)` gives the response ids (without BOS/EOS)."""

    settings: ContextSettings
    tokenizer: Any

    def reply(self, src: list[int]) -> list[int]: ...


def run_directory(ckpt: str | Path) -> Path:
    """The run directory of a checkpoint written by distillab-train (`<run>/checkpoints/x`),
    with the `config.yaml` and `tokenizer/` a chat or a server reads beside it."""
    run_dir = Path(ckpt).resolve().parent.parent
    for need in ("config.yaml", "tokenizer"):
        if not (run_dir / need).exists():
            raise ConfigError(
                f"ckpt={ckpt}: no {need} in its run directory {run_dir} (a checkpoint "
                "written by distillab-train, inside <run>/checkpoints/)"
            )
    return run_dir


class CheckpointReplier:
    """A distillab checkpoint inside its run directory (`<run>/checkpoints/x.ckpt`, with the
    run's `tokenizer/` and `config.yaml` beside `checkpoints/`), decoding with `decoding`
    (a `decoding` group node: greedy, beam or top-p sampling)."""

    def __init__(self, ckpt: str, decoding: dict, max_len: int | None = None) -> None:
        from distillab.checkpoint import hyperparameters, model_from, read_checkpoint
        from distillab.data.tokenizer import load_tokenizer

        run_dir = run_directory(ckpt)
        data = OmegaConf.load(run_dir / "config.yaml").data
        self.settings = ContextSettings(
            int(data.context_turns), int(data.max_source_len), int(data.max_target_len)
        )
        self.tokenizer = load_tokenizer(str(run_dir / "tokenizer"))
        state = read_checkpoint(ckpt)
        hp = hyperparameters(state)
        self.bos_id, self.eos_id, self.pad_id = hp["bos_id"], hp["eos_id"], hp["pad_id"]
        self.model = model_from(state, ckpt)
        self.strategy = build_strategy(decoding, "decoding")
        self.max_len = int(max_len or self.settings.max_target_len)

    @torch.inference_mode()
    def reply(self, src: list[int]) -> list[int]:
        ids = torch.tensor([src], dtype=torch.long)
        out = self.strategy(
            self.model,
            ids,
            torch.ones_like(ids, dtype=torch.bool),
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            max_len=self.max_len,
        )[0].tolist()
        out = out[: out.index(self.eos_id)] if self.eos_id in out else out
        return [t for t in out if t != self.pad_id]


class ExportReplier:
    """An exported directory (`distillab.export`: ONNX encoder and decoder step, tokenizer,
    config.json) decoded by onnxruntime: greedy, beam, or sampling with the serving runtime's
    sampler (`export.generate`: numpy, so a seed draws other tokens than the checkpoint's
    torch sampler does; a seed gives the same reply to the same source, no seed a fresh draw
    each time, from one generator per chat)."""

    def __init__(self, path: str, decoding: dict, max_len: int | None = None) -> None:
        from transformers import PreTrainedTokenizerFast

        from distillab.export.runtime_kv import open_export

        if not (Path(path) / "config.json").is_file():
            raise ConfigError(f"ckpt={path}: a directory without config.json (not an export)")
        self.model = open_export(path)  # a GRU's or a transformer's export
        c = self.model.config
        self.settings = ContextSettings(c["context_turns"], c["max_source_len"], c["max_len"])
        self.tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(Path(path) / c["files"]["tokenizer"])
        )
        strategy = build_strategy(decoding, "decoding")
        if not isinstance(strategy, Greedy | Beam | Sample):
            raise ConfigError(
                f"decoding={type(strategy).__name__}: an exported model decodes greedy, beam "
                "or sample (decoding=greedy | decoding=beam | decoding=sample)"
            )
        self.strategy = strategy
        self.max_len = int(max_len or self.settings.max_target_len)
        self.rng = np.random.default_rng()  # the draws of an unseeded sampler

    def reply(self, src: list[int]) -> list[int]:
        if isinstance(self.strategy, Sample):
            s = self.strategy
            sampling = Sampling(s.temperature, s.top_p, s.seed or 0)
            rng = None if s.seed is not None else self.rng  # None: a fresh one from the seed
            return generate(self.model, [Row(src, self.max_len, sampling, rng)])[0]
        ids = np.array([src], dtype=np.int64)
        mask = np.ones_like(ids, dtype=bool)
        if isinstance(self.strategy, Beam):
            s = self.strategy
            out = self.model.beam(ids, mask, self.max_len, s.beam_size, s.length_penalty)[0]
        else:
            out = self.model.greedy(ids, mask, self.max_len)[0]
        out = out.tolist()
        eos, pad = self.model.eos_id, self.model.pad_id
        out = out[: out.index(eos)] if eos in out else out
        return [t for t in out if t != pad]


def load_replier(path: str, decoding: dict, max_len: int | None = None) -> Replier:
    """The replier for `path`: a checkpoint file, or an exported directory."""
    p = Path(path)
    if p.is_file():
        return CheckpointReplier(path, decoding, max_len)
    if p.is_dir():
        return ExportReplier(path, decoding, max_len)
    raise ConfigError(f"ckpt={path}: no such checkpoint file or exported directory")
