"""Teacher-output cache: the teacher's top-k log-probabilities for every training target token,
computed once per (teacher, data, training rows, k, draws, softening temperature) and
memory-mapped by every student that needs them.

Layout of `<cache_dir>/teacher_outputs/<key>/` (an artefact of `utils.artefacts.build_once`):
`values.npy` (fp16 [tokens, k + S], the teacher's log-probabilities softened at the cache's own
temperature, `softening_temperature` T_c: `log_softmax(z / T_c)`), `ids.npy` (int32
[tokens, k + S]), `offsets.npy` (int64 [rows + 1]: row r's target tokens, EOS included, are
`offsets[r]:offsets[r+1]`; rows outside the training subset are empty), `info.json` (its
format and the shape facts it was built with: data fingerprint, max_target_len, rows, tokens,
a hash of the offsets) and `artefact.json` (the spec it is keyed by). The first k columns are
the teacher's top-k tokens; the last S (`tail_samples`) are draws from its softened
distribution outside them, seeded by the cache key, so that KD against the cache
(`topk_kd_loss`) also teaches the tail, unbiasedly at the softening temperature. A job caches
at its own (starting) `distill.objective.temperature` (one teacher pass per temperature of a
sweep); a temperature schedule moves away from it by importance weights.

A cache is only ever read through `TeacherCache.batch`, which refuses a batch whose target
lengths are not the row lengths the cache was built with (a stale cache is an error, never a
silent all-zero KD target), and an `info.json` of another format is refused on opening.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from distillab.data import DialogueDataModule
from distillab.errors import ConfigError, DataError
from distillab.utils.artefacts import build_once
from distillab.utils.console import log
from distillab.utils.io import atomic_write_json, fingerprint

if TYPE_CHECKING:
    from distillab.teachers.base import Teacher

# v3: the softening temperature is keyed and recorded as `softening_temperature` (v2:
# `temperature`), and info.json records its format; an entry of another format is refused
FORMAT = "teacher-outputs-v3"


class TeacherCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.info = json.loads((self.path / "info.json").read_text())
        if self.info.get("format") != FORMAT:
            raise DataError(
                f"{self.path}: teacher-output cache of format {self.info.get('format', '?')!r}, "
                f"not {FORMAT!r} (built by another version of distillab). Refusing to read it; "
                "delete the directory to rebuild it."
            )
        self.values = np.load(self.path / "values.npy", mmap_mode="r")
        self.ids = np.load(self.path / "ids.npy", mmap_mode="r")
        self.offsets = np.load(self.path / "offsets.npy")
        self._check_files()

    @property
    def tail_samples(self) -> int:
        return int(self.info["tail_samples"])

    @property
    def softening_temperature(self) -> float:
        """What its log-probabilities were softened at (`log_softmax(z / T_c)`): the
        distillation temperature it was built for, not necessarily the one of every step."""
        return float(self.info["softening_temperature"])

    @property
    def k(self) -> int:
        return int(self.info["k"])

    def _recorded(self) -> str:
        i = self.info
        return (
            f"data {i['data']}, max_target_len={i['max_target_len']}, {i['rows']} rows, "
            f"{i['tokens']} tokens"
        )

    def _check_files(self) -> None:
        """The arrays on disk are those info.json describes."""
        i, problems = self.info, []
        if len(self.offsets) != i["rows"] + 1 or int(self.offsets[-1]) != i["tokens"]:
            problems.append(
                f"offsets.npy has {len(self.offsets) - 1} rows, {int(self.offsets[-1])} tokens"
            )
        elif _offsets_hash(self.offsets) != i["offsets_hash"]:
            problems.append("offsets.npy is not the one it was built with")
        cols = i["k"] + i["tail_samples"]
        for name in ("values", "ids"):
            shape = getattr(self, name).shape
            if shape != (i["tokens"], cols):
                problems.append(f"{name}.npy has shape {list(shape)}, not [{i['tokens']}, {cols}]")
        if problems:
            raise DataError(
                f"{self.path}: teacher-output cache does not match its info.json "
                f"({self._recorded()}): {'; '.join(problems)}. Refusing to read it; delete "
                "the directory to rebuild it."
            )

    def check_data(self, dm: DialogueDataModule) -> None:
        """Refuse a cache built for other examples than `dm`'s."""
        i = self.info
        if i["data"] != dm.fingerprint or i["max_target_len"] != dm.max_target_len:
            raise DataError(
                f"{self.path}: teacher-output cache built for {self._recorded()}; this job's "
                f"data is {dm.fingerprint} with data.max_target_len={dm.max_target_len}. "
                "Refusing to read a stale cache."
            )

    def batch(
        self, index: torch.Tensor, tgt_len: int, tgt_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached outputs of a batch, aligned with its `tgt_out`: values (fp16) and ids
        (int64), [B, tgt_len, k + S], zeros past each row's end, on `tgt_mask`'s device.

        `index` [B] are the batch's training rows, `tgt_mask` [B, tgt_len] its target mask.
        Raises DataError, naming the cache and what it recorded, when a row's cached length
        is not its target length in the batch (the cache was built for other data or
        `max_target_len`, or for other training rows)."""
        rows = index.detach().cpu().numpy().astype(np.int64)
        mask = tgt_mask.detach().cpu()
        if mask.shape != (len(rows), tgt_len):
            raise ValueError(
                f"tgt_mask has shape {list(mask.shape)}, expected [{len(rows)}, {tgt_len}]"
            )
        want = mask.sum(1).numpy().astype(np.int64)
        n_rows = len(self.offsets) - 1
        outside = rows[(rows < 0) | (rows >= n_rows)]
        if outside.size:
            raise DataError(
                f"{self.path}: teacher-output cache built for {self._recorded()}; the batch "
                f"asks for rows {outside[:5].tolist()} outside it. Refusing to read a stale "
                "cache; delete the directory to rebuild it."
            )
        starts, have = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        bad = np.flatnonzero(have != want)
        if bad.size:
            b = bad[0]
            more = f" (and {bad.size - 1} more rows of the batch)" if bad.size > 1 else ""
            raise DataError(
                f"{self.path}: teacher-output cache built for {self._recorded()}; row "
                f"{rows[b]} has {have[b]} cached target tokens but the batch's target has "
                f"{want[b]} (EOS included){more}. Refusing to read a stale cache: rebuild it "
                "(delete the directory) or use the data settings it was built with."
            )
        pos = np.arange(tgt_len)
        valid = pos[None, :] < have[:, None]
        flat = (starts[:, None] + pos[None, :])[valid]
        cols = self.values.shape[1]
        values = np.zeros((len(rows), tgt_len, cols), dtype=np.float16)
        ids = np.zeros((len(rows), tgt_len, cols), dtype=np.int64)
        values[valid], ids[valid] = self.values[flat], self.ids[flat]
        device = tgt_mask.device
        return torch.from_numpy(values).to(device), torch.from_numpy(ids).to(device)

    @classmethod
    def spec(
        cls,
        teacher: Teacher,
        dm: DialogueDataModule,
        k: int,
        tail_samples: int,
        softening_temperature: float,
    ) -> dict:
        """What the cache is keyed by (its path is a hash of this)."""
        return {
            "format": FORMAT,
            "teacher": teacher.identity,
            "data": dm.fingerprint,
            "max_target_len": dm.max_target_len,
            "train_rows": fingerprint(dm.datasets["train"].rows.tolist()),
            "k": k,
            "tail_samples": tail_samples,
            "softening_temperature": float(softening_temperature),
        }

    @classmethod
    def build_or_load(
        cls,
        teacher: Teacher,
        dm: DialogueDataModule,
        k: int,
        tail_samples: int,
        softening_temperature: float,
        cache_dir: str | Path,
    ) -> TeacherCache:
        """The cache of `teacher`'s top-`k` and `tail_samples` draws on `dm`'s training rows,
        softened at `softening_temperature` (where its KD target is unbiased), built once."""
        vocab = len(dm.tokenizer)
        if k > vocab:
            raise ConfigError(f"distill.topk={k} exceeds the vocabulary size {vocab}")
        tail_samples = tail_samples if k < vocab else 0  # no tail to draw from
        spec = cls.spec(teacher, dm, k, tail_samples, softening_temperature)
        key = fingerprint(spec)
        path = Path(cache_dir) / "teacher_outputs" / key
        build_spec = {
            "k": k,
            "tail_samples": tail_samples,
            "softening_temperature": float(softening_temperature),
            "seed": int(key[:8], 16),
        }
        build_once(path, spec, lambda tmp: cls._build(teacher, dm, build_spec, tmp))
        cache = cls(path)
        cache.check_data(dm)
        return cache

    @staticmethod
    @torch.no_grad()
    def _build(
        teacher: Teacher,
        dm: DialogueDataModule,
        spec: dict,
        out: Path,
    ) -> None:
        """Write the cache described by `spec` (k, tail_samples, softening_temperature, seed;
        it goes to info.json with its format and the shape facts) into `out`, a fresh
        directory."""
        k, tail_samples = spec["k"], spec["tail_samples"]
        softening = spec["softening_temperature"]
        train = dm.datasets["train"]
        n_rows = len(train.split.examples)
        lengths = np.zeros(n_rows, dtype=np.int64)
        for row in train.rows:  # target length incl. EOS, exactly as collate builds it
            conv, t = train.split.examples[row]
            lengths[row] = len(train.target(int(conv), int(t))) + 1
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        log.info(f"teacher outputs: one teacher pass over {len(train)} training inputs -> {out}")
        total = int(offsets[-1])
        cols = k + tail_samples
        values = np.lib.format.open_memmap(out / "values.npy", "w+", np.float16, (total, cols))
        ids = np.lib.format.open_memmap(out / "ids.npy", "w+", np.int32, (total, cols))
        gen = torch.Generator().manual_seed(spec["seed"])
        for batch in dm.plain_loader("train"):
            (logits,) = teacher.outputs(batch).logits  # one online teacher's full logits
            logits = logits.float()
            log_probs = torch.log_softmax(logits / softening, dim=-1)
            top_v, top_i = log_probs.topk(k, dim=-1)
            if tail_samples:
                top_v, top_i = _add_tail_draws(log_probs, top_v, top_i, tail_samples, gen)
            top_v, top_i = top_v.half().numpy(), top_i.int().numpy()
            for i, row in enumerate(batch.index.tolist()):
                a, b = offsets[row], offsets[row + 1]
                values[a:b], ids[a:b] = top_v[i, : b - a], top_i[i, : b - a]
        values.flush(), ids.flush()
        del values, ids
        np.save(out / "offsets.npy", offsets)
        atomic_write_json(
            out / "info.json",
            {
                "format": FORMAT,
                "teacher": teacher.identity,
                "data": dm.fingerprint,
                "max_target_len": dm.max_target_len,
                **spec,
                "rows": n_rows,
                "rows_filled": len(train),
                "tokens": total,
                "offsets_hash": _offsets_hash(offsets),
            },
        )


def _offsets_hash(offsets: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(offsets, dtype=np.int64).tobytes()).hexdigest()[:16]


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
