"""Decode an exported transformer (:mod:`distillab.export.kv`) with onnxruntime and numpy
alone: no torch. The decoder state is the key/value cache as named arrays (`config.json`
lists them), so a reply costs one step graph call per token.

    from distillab.export.runtime_kv import open_export
    bot = open_export("outputs/.../export")       # a GRU's or a transformer's export
    bot.reply(["hi there"])

`open_export` picks the runtime from the directory's `format`; both runtimes share the
decoding loops (greedy, beam) and the text handling of :class:`OnnxSeq2Seq`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distillab.export.runtime import PRECISIONS, OnnxSeq2Seq, session

FORMAT = "distillab-onnx-kv-v1"

State = dict[str, np.ndarray]


class OnnxKV(OnnxSeq2Seq):
    """An exported transformer: ``encode``/``step``/``reorder`` on a dict of named arrays
    (every one batch-first), greedy and beam decoding, ``reply`` from text turns."""

    def __init__(
        self, path: str | Path, precision: str = "fp32", threads: int | None = None
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: choose one of {list(PRECISIONS)}")
        self.path = Path(path)
        self.config = c = json.loads((self.path / "config.json").read_text())
        files = c["files"][precision]
        self.encoder = session(self.path / files["encoder"], threads)
        self.decoder = session(self.path / files["step"], threads)
        self.vocab_size, self.pad_id = c["vocab_size"], c["pad_id"]
        self.bos_id, self.eos_id = c["bos_id"], c["eos_id"]
        self._tokenizer = None
        self.carried = list(c["carried"])
        self._step_out = ["logits", *[f"new_{n}" for n in self.carried]]
        self._greedy_out = ["next_token", *[f"new_{n}" for n in self.carried]]

    def encode(self, src: np.ndarray, src_mask: np.ndarray) -> State:
        """The state after the context: the encoder graph's outputs and empty caches."""
        feed = {"src": np.asarray(src, np.int64), "src_mask": np.asarray(src_mask, bool)}
        names = self.config["encoder_outputs"]
        state = dict(zip(names, self.encoder.run(names, feed), strict=True))
        batch = src.shape[0]
        for name, (heads, dim) in self.config["empty"].items():
            state[name] = np.zeros((batch, heads, 0, dim), dtype=np.float32)
        return state

    def feed(self, prev: np.ndarray, state: State) -> dict[str, np.ndarray]:
        inputs = {n: state[n] for n in self.config["step_inputs"]}
        return {"prev": np.asarray(prev, np.int64), **inputs}

    def advance(self, state: State, new: list[np.ndarray]) -> State:
        return {**state, **dict(zip(self.carried, new, strict=True))}

    def step(self, prev: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """``(logits [N, V], new state)``."""
        logits, *new = self.decoder.run(self._step_out, self.feed(prev, state))
        return logits, self.advance(state, new)

    @staticmethod
    def reorder(state: State, index: np.ndarray) -> State:
        return {n: a[index] for n, a in state.items()}

    def pick(self, prev: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """``(next tokens [N], new state)``: the graph picks each token (argmax, padding and
        BOS banned); the cache grows by one position (the shared greedy loop calls this)."""
        tok, *new = self.decoder.run(self._greedy_out, self.feed(prev, state))
        return tok, self.advance(state, new)


def open_export(
    path: str | Path, precision: str = "fp32", threads: int | None = None
) -> OnnxSeq2Seq:
    """The runtime for an exported directory: a transformer's (key/value cache) or a GRU's."""
    config = json.loads((Path(path) / "config.json").read_text())
    runtime = OnnxKV if config.get("format") == FORMAT else OnnxSeq2Seq
    return runtime(path, precision, threads)
