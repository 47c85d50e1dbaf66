"""Keyed artefacts on disk, built once: the one way every cache of distillab is written.

An artefact is a directory `path` holding whatever its `build` writes plus `artefact.json`,
which records the `spec` it was built for (and when). `build_once` makes concurrent callers
(the jobs of a sweep, threads or processes) wait on a file lock for a single build, builds into
a fresh temporary directory next to `path` and renames it into place atomically, with
`artefact.json` written last: a directory at `path` is therefore always complete. A build
that fails leaves nothing behind. An entry whose recorded spec differs from the one asked for
is refused, never read: stale data is an error, not a silent reuse.

Callers put in `spec` exactly what they key the path by (the path is usually a hash of it),
so that equal keys mean equal specs; facts that do not shape the contents (where a checkpoint
was read from, how long the build took) belong in the artefact's own files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from distillab.errors import DataError
from distillab.utils.io import atomic_write_json

MARKER = "artefact.json"


class StaleArtefactError(DataError):
    """An artefact exists at the path but was built for another spec (or not by build_once)."""


def build_once(
    path: str | Path,
    spec: dict,
    build: Callable[[Path], None],
    staging: str | Path | None = None,
) -> Path:
    """Return `path` holding the artefact described by `spec`, calling `build(tmp_dir)` to
    write it unless an entry built for the same spec is there already.

    `spec` must be JSON-serialisable; it is compared as JSON (tuples equal lists). Raises
    `StaleArtefactError` when `path` exists with another recorded spec or without
    `artefact.json`. Whatever `build` raises propagates, with no entry and the lock released.

    `staging`: build in this fixed directory instead of a fresh temporary one, and keep it
    when the build fails or is killed, so that a later build can resume from what it holds
    (the teacher registry resumes a teacher's training from its last checkpoint there).
    """
    path = Path(path)
    spec = _as_json(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            _check(path, spec)
            return path
        if staging is None:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        else:
            tmp = Path(staging)
            tmp.mkdir(parents=True, exist_ok=True)
        try:
            build(tmp)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            atomic_write_json(tmp / MARKER, {"spec": spec, "created": created})
            os.rename(tmp, path)
        finally:
            if staging is None:
                shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename
    return path


def wait_built(
    path: str | Path, spec: dict, gone: Callable[[], str | None], poll_s: float = 2.0
) -> Path:
    """Wait for another process to build the artefact at `path` (the DDP ranks of a job
    started together: rank 0 builds, the others wait); `gone()` says why that process will not
    build it any more (raised as a DataError), or None while it may."""
    path, spec = Path(path), _as_json(spec)
    while not (path / MARKER).is_file():
        why = gone()
        if why:
            raise DataError(f"{path}: not built: {why}")
        time.sleep(poll_s)
    _check(path, spec)
    return path


def recorded_spec(path: str | Path) -> dict | None:
    """The spec an artefact at `path` was built for; None when there is none."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text())["spec"]


def _check(path: Path, spec: dict) -> None:
    recorded = recorded_spec(path)
    if recorded is None:
        raise StaleArtefactError(
            f"{path} exists but has no {MARKER}: it was not built by this version of "
            "distillab (or by hand); refusing to read it. Delete it to rebuild."
        )
    if recorded != spec:
        diffs = "; ".join(
            f"{key}: recorded {a!r}, asked {b!r}" for key, a, b in _differences(recorded, spec)
        )
        raise StaleArtefactError(
            f"{path} was built for another spec ({diffs}); refusing to read a stale artefact. "
            "Delete it to rebuild."
        )


def _as_json(spec: dict) -> dict:
    if not isinstance(spec, dict):
        raise TypeError(f"an artefact spec is a dict, got {type(spec).__name__}")
    return json.loads(json.dumps(spec, sort_keys=True))


_MISSING = "<missing>"


def _differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ between two JSON values (dicts are walked)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _differences(a.get(key, _MISSING), b.get(key, _MISSING), name)
        return out
    return [] if a == b else [(prefix or "<spec>", a, b)]
