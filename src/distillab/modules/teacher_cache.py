"""Teacher-output cache: the teacher's top-k logits for every training target token, computed
once per (teacher, data, training rows, k) and memory-mapped by every student that needs them.

Layout of `<cache_dir>/teacher_outputs/<key>/`: `values.npy` (fp16 [tokens, k], the
teacher's log-probabilities at T=1), `ids.npy`
(int32 [tokens, k]), `offsets.npy` (int64 [rows + 1]: row r's target tokens, EOS included,
are `offsets[r]:offsets[r+1]`), `info.json`. KD against it uses `topk_kd_loss`: the top-k
tokens plus one "tail" category holding the rest of the teacher's mass.
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
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils.io import atomic_write_json, file_sha256, fingerprint


class TeacherCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.values = np.load(self.path / "values.npy", mmap_mode="r")
        self.ids = np.load(self.path / "ids.npy", mmap_mode="r")
        self.offsets = np.load(self.path / "offsets.npy")
        self.info = json.loads((self.path / "info.json").read_text())

    @property
    def k(self) -> int:
        return self.values.shape[1]

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's top-k (values fp16, ids int32) for each target token of a training row."""
        a, b = self.offsets[row], self.offsets[row + 1]
        return self.values[a:b], self.ids[a:b]

    @classmethod
    def key(cls, ckpt: str, dm: DialogueDataModule, k: int) -> str:
        rows = dm.datasets["train"].rows
        return fingerprint(file_sha256(ckpt), dm.fingerprint, fingerprint(rows.tolist()), k, "logp")

    @classmethod
    def build_or_load(
        cls, teacher: Seq2SeqModule, ckpt: str, dm: DialogueDataModule, k: int, cache_dir: str
    ) -> TeacherCache:
        path = Path(cache_dir) / "teacher_outputs" / cls.key(ckpt, dm, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not (path / "info.json").exists():
                cls._build(teacher, ckpt, dm, k, path)
        return cls(path)

    @staticmethod
    @torch.no_grad()
    def _build(teacher: Seq2SeqModule, ckpt: str, dm: DialogueDataModule, k: int, path: Path):
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
            values = np.lib.format.open_memmap(tmp / "values.npy", "w+", np.float16, (total, k))
            ids = np.lib.format.open_memmap(tmp / "ids.npy", "w+", np.int32, (total, k))
            teacher.eval()
            for batch in dm.plain_loader("train"):
                log_probs = torch.log_softmax(teacher(batch).logits.float(), dim=-1)
                top_v, top_i = log_probs.topk(k, dim=-1)
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
                    "k": k,
                    "rows": len(train),
                    "tokens": total,
                },
            )
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
