"""Teacher-output cache: the teacher's top-k log-probabilities for every training target token,
computed once per (teacher, data, training rows, k, draws, temperature) and memory-mapped by
every student that needs them.

Layout of `<cache_dir>/teacher_outputs/<key>/`: `values.npy` (fp16 [tokens, k + S], the
teacher's log-probabilities softened at the cache temperature, `log_softmax(z / T_c)`),
`ids.npy` (int32 [tokens, k + S]), `offsets.npy` (int64 [rows + 1]: row r's target tokens, EOS
included, are `offsets[r]:offsets[r+1]`), `info.json`. The first k columns are the teacher's
top-k tokens; the last S (`tail_samples`) are draws from its softened distribution outside
them, seeded by the cache key, so that KD against the cache (`topk_kd_loss`) also teaches the
tail, unbiasedly at the cache temperature. A job caches at its own `distill.objective.temperature`
(one teacher pass per temperature of a sweep); a temperature schedule moves away from it by
importance weights.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from distillab.data import DialogueDataModule
from distillab.errors import ConfigError
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.io import atomic_write_json, fingerprint


class TeacherCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.values = np.load(self.path / "values.npy", mmap_mode="r")
        self.ids = np.load(self.path / "ids.npy", mmap_mode="r")
        self.offsets = np.load(self.path / "offsets.npy")
        self.info = json.loads((self.path / "info.json").read_text())

    @property
    def tail_samples(self) -> int:
        return int(self.info["tail_samples"])

    @property
    def temperature(self) -> float:
        return float(self.info["temperature"])

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray, int, float]:
        """For each target token of a training row: values (fp16) and ids (int32) of the top-k
        and the tail draws; how many trailing columns are draws; the cache temperature."""
        a, b = self.offsets[row], self.offsets[row + 1]
        return self.values[a:b], self.ids[a:b], self.tail_samples, self.temperature

    def batch(self, index, tgt_mask):
        """TEMP until merged"""
        import torch

        b, t = tgt_mask.shape
        cols = self.values.shape[1]
        values = np.zeros((b, t, cols), dtype=np.float16)
        ids = np.zeros((b, t, cols), dtype=np.int64)
        for i, row in enumerate(index.tolist()):
            a, e = self.offsets[row], self.offsets[row + 1]
            values[i, : e - a], ids[i, : e - a] = self.values[a:e], self.ids[a:e]
        return torch.from_numpy(values), torch.from_numpy(ids)

    @classmethod
    def key(
        cls, ckpt: str, dm: DialogueDataModule, k: int, tail_samples: int, temperature: float
    ) -> str:
        rows = fingerprint(dm.datasets["train"].rows.tolist())
        return fingerprint(
            ckpt,
            dm.fingerprint,
            rows,
            k,
            tail_samples,
            float(temperature),
            "softened-logp-sorted-draws",
        )

    @classmethod
    def build_or_load(cls, teacher, dm, spec, cache_dir) -> TeacherCache:
        k, tail_samples, temperature = spec["k"], spec["tail_samples"], spec["temperature"]
        ckpt = teacher.identity
        vocab = len(dm.tokenizer)
        if k > vocab:
            raise ConfigError(f"distill.topk={k} exceeds the vocabulary size {vocab}")
        tail_samples = tail_samples if k < vocab else 0  # no tail to draw from
        key = cls.key(ckpt, dm, k, tail_samples, temperature)
        path = Path(cache_dir) / "teacher_outputs" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not (path / "info.json").exists():
                spec = {
                    "k": k,
                    "tail_samples": tail_samples,
                    "temperature": float(temperature),
                    "seed": int(key[:8], 16),
                }
                cls._build(teacher, ckpt, dm, spec, path)
        return cls(path)

    @staticmethod
    @torch.no_grad()
    def _build(
        teacher: Seq2SeqModule,
        ckpt: str,
        dm: DialogueDataModule,
        spec: dict,
        path: Path,
    ) -> None:
        """Write the cache described by `spec` (k, tail_samples, temperature, seed; it goes to
        info.json as is) to `path`, atomically."""
        k, tail_samples, temperature = spec["k"], spec["tail_samples"], spec["temperature"]
        train = dm.datasets["train"]
        n_rows = len(train.split.examples)
        lengths = np.zeros(n_rows, dtype=np.int64)
        for row in train.rows:  # target length incl. EOS, exactly as collate builds it
            conv, t = train.split.examples[row]
            lengths[row] = len(train.target(int(conv), int(t))) + 1
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        print(f"teacher outputs: one teacher pass over {len(train)} training inputs -> {path}")
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        try:
            total = int(offsets[-1])
            cols = k + tail_samples
            values = np.lib.format.open_memmap(tmp / "values.npy", "w+", np.float16, (total, cols))
            ids = np.lib.format.open_memmap(tmp / "ids.npy", "w+", np.int32, (total, cols))
            gen = torch.Generator().manual_seed(spec["seed"])
            for batch in dm.plain_loader("train"):
                logits = teacher.outputs(batch).logits[0].float()
                log_probs = torch.log_softmax(logits / temperature, dim=-1)
                top_v, top_i = log_probs.topk(k, dim=-1)
                if tail_samples:
                    top_v, top_i = _add_tail_draws(log_probs, top_v, top_i, tail_samples, gen)
                top_v, top_i = top_v.half().numpy(), top_i.int().numpy()
                for i, row in enumerate(batch["index"].tolist()):
                    a, b = offsets[row], offsets[row + 1]
                    values[a:b], ids[a:b] = top_v[i, : b - a], top_i[i, : b - a]
            values.flush(), ids.flush()
            del values, ids
            np.save(tmp / "offsets.npy", offsets)
            atomic_write_json(
                tmp / "info.json",
                {
                    "teacher": ckpt,
                    "data": dm.fingerprint,
                    **spec,
                    "rows": len(train),
                    "tokens": total,
                },
            )
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _add_tail_draws(
    log_probs: torch.Tensor,
    top_v: torch.Tensor,
    top_i: torch.Tensor,
    n: int,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append `n` draws (with replacement, sorted by id) from the (softened) teacher distribution
    outside its top-k."""
    vocab = log_probs.shape[-1]
    # a tiny floor keeps rows whose tail underflowed to 0 drawable; such draws weigh ~0
    tail = (log_probs.exp() + 1e-30).scatter(-1, top_i, 0.0).reshape(-1, vocab)
    drawn = torch.multinomial(tail, n, replacement=True, generator=gen).sort(-1).values
    drawn = drawn.view(*top_i.shape[:-1], n)  # sorted: repeated draws are adjacent
    drawn_v = log_probs.gather(-1, drawn)
    return torch.cat([top_v, drawn_v], -1), torch.cat([top_i, drawn], -1)
