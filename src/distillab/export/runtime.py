"""Decode from an exported directory with onnxruntime, numpy and tokenizers alone: no torch.

    from distillab.export.runtime import OnnxSeq2Seq
    bot = OnnxSeq2Seq("outputs/.../export", precision="int8")
    bot.reply(["hi there", "hello! how are you?"])          # greedy
    bot.reply(["hi there"], beam_size=4)                    # beam search

The decoding mirrors :mod:`distillab.decoding` (greedy, and beam search ranked by
``logp / len ** length_penalty``): on the same inputs the fp32 graphs give the PyTorch model's
tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

PRECISIONS = ("fp32", "int8")


def session(path: Path, threads: int | None) -> ort.InferenceSession:
    """A CPU session, all graph optimizations, nodes run in order (a decoder step is a chain:
    nothing to run in parallel); ``threads`` caps the intra-op pool (``None``: onnxruntime's)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxSeq2Seq:
    """An exported model: ``encode``/``step``/``reorder`` (the decoding protocol, on numpy
    arrays), ``greedy``/``beam`` decoding, and ``reply`` from text turns."""

    def __init__(
        self, path: str | Path, precision: str = "fp32", threads: int | None = None
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: choose one of {list(PRECISIONS)}")
        self.path = Path(path)
        self.config = json.loads((self.path / "config.json").read_text())
        files = self.config["files"][precision]
        self.encoder = session(self.path / files["encoder"], threads)
        self.decoder = session(self.path / files["step"], threads)
        # named outputs: run(None, ...) rebuilds this list from the session on every call
        self._encoder_out = [o.name for o in self.encoder.get_outputs()]
        self._step_out = ["logits", "new_hidden"]
        self._greedy_out = ["next_token", "new_hidden"]
        c = self.config
        self.vocab_size, self.pad_id = c["vocab_size"], c["pad_id"]
        self.bos_id, self.eos_id = c["bos_id"], c["eos_id"]
        self._tokenizer = None

    # ---- the decoding protocol --------------------------------------------------------------
    def encode(self, src: np.ndarray, src_mask: np.ndarray) -> list[np.ndarray]:
        """``[values, scorer, bias, hidden]`` for ``src [B, T]`` (right-padded, mask True on
        real tokens)."""
        feed = {"src": np.asarray(src, np.int64), "src_mask": np.asarray(src_mask, bool)}
        return self.encoder.run(self._encoder_out, feed)

    def step(self, prev: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """``(logits [N, V], new state)``; the logits are a fresh array, the caller's to
        modify."""
        values, scorer, bias, hidden = state
        feed = {
            "prev": np.asarray(prev, np.int64),
            "values": values,
            "scorer": scorer,
            "bias": bias,
            "hidden": hidden,
        }
        logits, hidden = self.decoder.run(self._step_out, feed)
        return logits, [values, scorer, bias, hidden]

    @staticmethod
    def reorder(state: list[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
        values, scorer, bias, hidden = state
        return [values[index], scorer[index], bias[index], hidden[:, index]]

    def banned(self) -> np.ndarray:
        bias = np.zeros(self.vocab_size, dtype=np.float32)
        bias[[self.pad_id, self.bos_id]] = -np.inf
        return bias

    # ---- decoding ---------------------------------------------------------------------------
    def pick(self, prev: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """``(next tokens [N], new state)``: the graph picks each token (argmax, padding and
        BOS banned), so no logits are fetched."""
        values, scorer, bias, hidden = state
        feed = {"values": values, "scorer": scorer, "bias": bias, "hidden": hidden}
        tok, hidden = self.decoder.run(self._greedy_out, {**feed, "prev": prev})
        return tok, [values, scorer, bias, hidden]

    def greedy(
        self, src: np.ndarray, src_mask: np.ndarray, max_len: int, eos_id: int | None = None
    ) -> np.ndarray:
        """Tokens ``[B, <=max_len]`` without BOS, EOS included, pad after it (``eos_id=-1``:
        never stop early, as latency measurements do)."""
        eos = self.eos_id if eos_id is None else eos_id
        batch = src.shape[0]
        state = self.encode(src, src_mask)
        prev = np.full(batch, self.bos_id, dtype=np.int64)
        finished = None  # rows that emitted EOS, once any has
        out = []
        for _ in range(max_len):
            tok, state = self.pick(prev, state)
            if finished is not None:
                tok[finished] = self.pad_id
            out.append(tok)
            ended = tok == eos
            if ended.any():
                finished = ended if finished is None else finished | ended
                if finished.all():
                    break
            prev = tok
        return np.stack(out, 1) if out else np.zeros((batch, 0), dtype=np.int64)

    def beam(
        self,
        src: np.ndarray,
        src_mask: np.ndarray,
        max_len: int,
        beam_size: int = 4,
        length_penalty: float = 1.0,
    ) -> np.ndarray:
        """The best hypothesis per row (as :class:`distillab.decoding.Beam`)."""
        k, batch, vocab = beam_size, src.shape[0], self.vocab_size
        banned = self.banned()
        state = self.reorder(self.encode(src, src_mask), np.repeat(np.arange(batch), k))
        scores = np.full((batch, k), -np.inf, dtype=np.float32)
        scores[:, 0] = 0.0
        finished = np.isinf(scores)
        lengths = np.zeros((batch, k), dtype=np.int64)
        tokens = np.zeros((batch, k, 0), dtype=np.int64)
        fin_row = np.full(vocab, -np.inf, dtype=np.float32)
        fin_row[self.pad_id] = 0.0
        row_base = (np.arange(batch) * k)[:, None]
        prev = np.full(batch * k, self.bos_id, dtype=np.int64)
        for t in range(max_len):
            logits, state = self.step(prev, state)
            logp = log_softmax(logits) + banned
            logp = np.where(finished[..., None], fin_row, logp.reshape(batch, k, vocab))
            cand = scores[..., None] + logp
            new_len = np.where(finished, lengths, t + 1)
            denom = np.maximum(new_len, 1).astype(np.float32) ** length_penalty
            flat = (cand / denom[..., None]).reshape(batch, -1)
            top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
            beam_idx, tok = top // vocab, top % vocab
            scores = np.take_along_axis(cand.reshape(batch, -1), top, 1)
            was_finished = np.take_along_axis(finished, beam_idx, 1)
            lengths = np.take_along_axis(new_len, beam_idx, 1)
            tokens = np.concatenate(
                [np.take_along_axis(tokens, beam_idx[..., None], 1), tok[..., None]], -1
            )
            finished = was_finished | (tok == self.eos_id) | np.isinf(scores)
            state = self.reorder(state, (row_base + beam_idx).reshape(-1))
            prev = tok.reshape(-1)
            if finished.all():
                break
        if tokens.shape[-1] == 0:
            return np.zeros((batch, 0), dtype=np.int64)
        final = scores / np.maximum(lengths, 1).astype(np.float32) ** length_penalty
        best = final.argmax(1)
        rows = np.arange(batch)
        return tokens[rows, best][:, : int(lengths[rows, best].max())]

    # ---- text -------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(
                str(self.path / self.config["files"]["tokenizer"])
            )
        return self._tokenizer

    def source(self, turns: list[str]) -> np.ndarray:
        """The model's input for a conversation so far (the reply is the next turn), assembled
        as in training: ``<other> turn <self> turn ...``, the last ``context_turns`` turns,
        truncated on the left to ``max_source_len`` tokens."""
        c = self.config
        parts: list[int] = []
        n = len(turns)
        for j in range(max(0, n - c["context_turns"]), n):
            marker = c["self_id"] if (n - j) % 2 == 0 else c["other_id"]
            ids = self.tokenizer.encode(turns[j].strip(), add_special_tokens=False).ids
            parts += [marker, *ids]
        return np.array(parts[-c["max_source_len"] :], dtype=np.int64)[None]

    def reply(self, turns: list[str], beam_size: int = 1, length_penalty: float = 1.0) -> str:
        """The next turn: greedy (``beam_size=1``) or beam search."""
        src = self.source(turns)
        mask = np.ones_like(src, dtype=bool)
        max_len = self.config["max_len"]
        if beam_size > 1:
            ids = self.beam(src, mask, max_len, beam_size, length_penalty)[0]
        else:
            ids = self.greedy(src, mask, max_len)[0]
        ids = ids.tolist()
        ids = ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids
        return self.tokenizer.decode(
            [i for i in ids if i != self.pad_id], skip_special_tokens=True
        ).strip()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))
