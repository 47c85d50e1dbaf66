"""Teacher-output cache: the teacher's top-k log-probabilities for every training target token,
computed once per (teacher, data, training rows, k, draws, softening temperature, codec) and
memory-mapped by every student that needs them.

Layout of `<cache_dir>/teacher_outputs/<key>/` (an artefact of `utils.artefacts.build_once`):
the codec's per-token arrays (`teachers.codecs`; e.g. `records.npy`, uint8 [tokens, bytes]
for the compact codec, or `values.npy` fp16 + `ids.npy` int32 [tokens, k + S] for the exact
one), `rows.npy` + `lengths.npy` (the training rows and their target lengths, EOS included:
in memory, `offsets` int64 [rows + 1], row r's tokens are `offsets[r]:offsets[r+1]`; rows
outside the training subset are empty), `info.json` (its
format, the codec's `_target_` and parameters, and the shape facts it was built with: data
fingerprint, max_target_len, rows, tokens, vocabulary, a hash of the offsets) and
`artefact.json` (the spec it is keyed by). Decoded, a token is k + S log-probabilities softened
at the cache's own temperature, `softening_temperature` T_c (`log_softmax(z / T_c)`), and
their ids: the first k columns are the teacher's top-k tokens; the last S (`tail_samples`) are
draws from its softened distribution outside them, seeded by the cache key, so that KD against
the cache (`topk_kd_loss`) also teaches the tail, unbiasedly at the softening temperature. A
job caches at its own (starting) `distill.objective.temperature` (one teacher pass per
temperature of a sweep); a temperature schedule moves away from it by importance weights.

A cache is only ever read through `TeacherCache.batch`, which refuses a batch whose target
lengths are not the row lengths the cache was built with (a stale cache is an error, never a
silent all-zero KD target); an `info.json` of another format, or written by another codec, is
refused on opening.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from hydra.utils import instantiate

from distillab.data.datamodule import DialogueDataModule
from distillab.errors import ConfigError, DataError
from distillab.teachers.cache_build import build_cache, load_offsets, offsets_hash
from distillab.teachers.codecs import Codec, Compact, Layout
from distillab.utils.artefacts import build_once
from distillab.utils.io import fingerprint

if TYPE_CHECKING:
    from distillab.teachers.base import Teacher

# v4: stored by a codec (`teachers.codecs`, keyed and recorded as `codec`; the vocabulary is
# recorded); v3: fp16 values + int32 ids, the softening temperature keyed as
# `softening_temperature`. An entry of another format is refused
FORMAT = "teacher-outputs-v4"


class TeacherCache:
    def __init__(self, path: str | Path, codec: Codec | None = None) -> None:
        """Open the cache at `path`; `codec` (None: the one it records) must be the one that
        wrote it."""
        self.path = Path(path)
        self.info = json.loads((self.path / "info.json").read_text())
        if self.info.get("format") != FORMAT:
            raise DataError(
                f"{self.path}: teacher-output cache of format {self.info.get('format', '?')!r}, "
                f"not {FORMAT!r} (built by another version of distillab). Refusing to read it; "
                "delete the directory to rebuild it."
            )
        recorded = self.info["codec"]
        if codec is not None and codec.key() != recorded:
            raise DataError(
                f"{self.path}: teacher-output cache written by codec {_describe(recorded)}, "
                f"not this job's {_describe(codec.key())}. Refusing to read it; delete the "
                "directory to rebuild it, or set distill.codec to the one it was written by."
            )
        self.codec = codec if codec is not None else instantiate(recorded)
        i = self.info
        self.layout = Layout(i["k"], i["tail_samples"], i["vocab"])
        self.arrays = {
            name: np.load(self.path / f"{name}.npy", mmap_mode="r")
            for name in self.codec.arrays(self.layout)
        }
        self.offsets = load_offsets(self.path, int(i["rows"]))
        self._check_files()
        # cache-wide arrays of the codec (e.g. a prior over the vocabulary), read once
        self.prior = {
            name: torch.from_numpy(np.load(self.path / f"global_{name}.npy"))
            for name in self.codec.global_names
        }
        self.estimator = self.codec.estimator(self.prior)
        self.dense_vectors = self.codec.dense_vectors(self.prior)

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

    @property
    def tokens(self) -> int:
        return int(self.info["tokens"])

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of everything in the cache's directory."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    @property
    def bytes_per_token(self) -> float:
        """Size on disk per target token (arrays, offsets and metadata)."""
        return self.size_bytes / max(self.tokens, 1)

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
                f"rows.npy/lengths.npy hold {len(self.offsets) - 1} rows, "
                f"{int(self.offsets[-1])} tokens"
            )
        elif offsets_hash(self.offsets) != i["offsets_hash"]:
            problems.append("rows.npy/lengths.npy are not the row lengths it was built with")
        for name in self.codec.global_names:
            if not (self.path / f"global_{name}.npy").is_file():
                problems.append(f"global_{name}.npy is missing")
        for name, (dtype, shape) in self.codec.arrays(self.layout).items():
            arr = self.arrays[name]
            want = (i["tokens"], *shape)
            if arr.shape != want or arr.dtype != dtype:
                problems.append(
                    f"{name}.npy is {arr.dtype} {list(arr.shape)}, not {dtype} {list(want)}"
                )
        if problems:
            raise DataError(
                f"{self.path}: teacher-output cache does not match its info.json "
                f"({self._recorded()}): {'; '.join(problems)}. Refusing to read it; delete "
                "the directory to rebuild it."
            )

    def decode(self, tokens: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoded values [n, k + S] and ids (int64) of the flat token indices `tokens`."""
        return self.codec.decode({n: a[tokens] for n, a in self.arrays.items()}, self.layout)

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
        """The cached outputs of a batch, aligned with its `tgt_out`: values (the codec's
        float dtype: fp16 exact, fp32 compact) and ids (int64), [B, tgt_len, k + S], zeros past each row's end, on `tgt_mask`'s device.

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
        dec_values, dec_ids = self.decode(flat)
        shape = (len(rows), tgt_len, self.codec.columns(self.layout))
        valid_t = torch.from_numpy(valid)
        values = dec_values.new_zeros(shape)
        ids = dec_ids.new_zeros(shape)
        values[valid_t], ids[valid_t] = dec_values, dec_ids
        device = tgt_mask.device
        return values.to(device), ids.to(device)

    @classmethod
    def spec(
        cls,
        teacher: Teacher,
        dm: DialogueDataModule,
        k: int,
        tail_samples: int,
        softening_temperature: float,
        codec: Codec,
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
            "codec": codec.key(),
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
        codec: Codec | None = None,
    ) -> TeacherCache:
        """The cache of `teacher`'s top-`k` and `tail_samples` draws on `dm`'s training rows,
        softened at `softening_temperature` (where its KD target is unbiased), stored by
        `codec` (None: the default compact one), built once."""
        codec = codec if codec is not None else Compact()
        vocab = len(dm.tokenizer)
        if k > vocab:
            raise ConfigError(f"distill.topk={k} exceeds the vocabulary size {vocab}")
        tail_samples = tail_samples if k < vocab else 0  # no tail to draw from
        spec = cls.spec(teacher, dm, k, tail_samples, softening_temperature, codec)
        key = fingerprint(spec)
        path = Path(cache_dir) / "teacher_outputs" / key
        build_spec = {
            "k": k,
            "tail_samples": tail_samples,
            "softening_temperature": float(softening_temperature),
            "seed": int(key[:8], 16),
        }
        info = {
            "format": FORMAT,
            "teacher": teacher.identity,
            "data": dm.fingerprint,
            "max_target_len": dm.max_target_len,
            "codec": codec.key(),
            "vocab": vocab,
            **build_spec,
        }

        def build(tmp: Path) -> None:
            build_cache(teacher, dm, codec, Layout(k, tail_samples, vocab), info, tmp)

        build_once(path, spec, build)
        cache = cls(path, codec)
        cache.check_data(dm)
        return cache


def _describe(key: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(key.items()) if k != "_target_")
    return f"{key.get('_target_', '?')}({params})"
