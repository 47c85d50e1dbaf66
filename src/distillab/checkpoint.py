"""Reading distillab checkpoints: the package's one `torch.load`.

Every load of a distillab checkpoint (eval, chat, compress, teachers, attention maps, the
resume check) goes through `read_checkpoint`, with `weights_only=True`: a checkpoint holds
only tensors and plain data. Lightning writes dicts, lists, numbers, strings and tensors (the
state dict, optimiser and scheduler states, loop progress, callback states, hyperparameters);
distillab's own states follow suit (`RngState` stores NumPy's and Python's RNG states as
tensors and lists, the datamodule a position of two ints). No extra type is allow-listed, so a
checkpoint cannot run code when it is read.

A file that is missing, empty, cut short, of another kind, or a PyTorch file that is not a
distillab checkpoint is refused with a `CheckpointError`: one line naming the file and what
is wrong (the CLIs print it and exit 2), never a torch traceback.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distillab.errors import DistillabError
from distillab.models.build import build_model

REQUIRED = ("state_dict", "hyper_parameters")  # what every distillab checkpoint holds
MODEL_PREFIX = "model."  # the network's weights inside a module's state dict
ZIP_MAGIC = b"PK\x03\x04"  # how a zip archive (a PyTorch file since torch 1.6) starts


class CheckpointError(DistillabError):
    """A checkpoint file cannot be used (missing, empty, truncated, not a checkpoint)."""


def _refuse(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {what}")


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def _check_file(path: Path) -> None:
    """Refuse what is not a complete, intact zip archive before torch reads it (its messages
    are long and, for a truncated archive, say nothing about truncation)."""
    if not path.is_file():
        raise _refuse(path, "no such file")
    size = path.stat().st_size
    if size == 0:
        raise _refuse(path, "the file is empty (0 bytes): its write never happened or was cut")
    with path.open("rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if not zipfile.is_zipfile(path):
        if head == ZIP_MAGIC:
            raise _refuse(
                path,
                f"truncated ({size} bytes, the archive's end is missing): its write was cut short",
            )
        raise _refuse(path, "not a PyTorch checkpoint (a file of another kind)")
    with zipfile.ZipFile(path) as z:
        if not any(n.endswith("/data.pkl") for n in z.namelist()):
            raise _refuse(path, "a zip archive that is not a PyTorch checkpoint")
        damaged = z.testzip()  # torch skips the records' checksums; a flipped byte shows here
    if damaged is not None:
        raise _refuse(path, f"damaged: its record {damaged} fails its checksum")


def _load(path: Path, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:  # weights_only refused a type: not written by us
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = found.group(1) if found else _first_line(e)[:160]
        raise _refuse(path, f"holds objects other than tensors and plain data ({what})") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise _refuse(path, f"unreadable, damaged or truncated ({_first_line(e)[:160]})") from None


def _check_contents(path: Path, state: Any) -> dict:
    if not isinstance(state, Mapping):
        raise _refuse(path, f"a PyTorch file holding a {type(state).__name__}, not a checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise _refuse(
            path,
            f"a PyTorch file without {' and '.join(missing)}: not a distillab checkpoint "
            "(one written by distillab-train, distillab-eval or the compression step)",
        )
    if not any(str(k).startswith(MODEL_PREFIX) for k in state["state_dict"]):
        raise _refuse(path, "its state_dict holds no model weights (model.*)")
    return dict(state)


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict:
    """The checkpoint's contents (tensors on the CPU), checked to be a distillab checkpoint.
    `mmap`: tensors memory-mapped, not read (a check before any work, a look at its step)."""
    path = Path(path)
    _check_file(path)
    return _check_contents(path, _load(path, mmap=mmap))


def check_checkpoint(path: str | Path) -> dict:
    """Refuse an unusable checkpoint before any work, without loading its tensors (they are
    memory-mapped; the archive's checksums are verified by reading the file once)."""
    return read_checkpoint(path, mmap=True)


def hyperparameters(state: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters the module that wrote the checkpoint was built with."""
    return dict(state["hyper_parameters"])


def model_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights (the module's `model.*` entries, prefix removed)."""
    n = len(MODEL_PREFIX)
    return {k[n:]: v for k, v in state["state_dict"].items() if k.startswith(MODEL_PREFIX)}


def model_from(state: Mapping[str, Any], path: str | Path = "?") -> nn.Module:
    """The network of a checkpoint's contents, in eval mode; weights that do not fit the
    network its hyperparameters describe are refused in one line."""
    try:
        model = build_model(hyperparameters(state))
    except Exception as e:  # noqa: BLE001 - a foreign config: KeyError, Hydra's errors, ...
        raise _refuse(
            Path(path), f"its hyperparameters describe no distillab model ({_first_line(e)})"
        ) from None
    try:
        model.load_state_dict(model_weights(state))
    except RuntimeError as e:
        raise _refuse(Path(path), f"its weights do not fit its model ({_first_line(e)})") from None
    return model.eval()


def load_model(path: str | Path) -> nn.Module:
    """Just the seq2seq network of any distillab checkpoint (teacher, student, distilled or
    compressed), without the module that trained it: for evaluation, decoding, benchmarks."""
    return model_from(read_checkpoint(path), path)


__all__ = [
    "CheckpointError",
    "check_checkpoint",
    "hyperparameters",
    "load_model",
    "model_from",
    "model_weights",
    "read_checkpoint",
]
