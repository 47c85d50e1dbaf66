"""build_once: one build per spec, nothing left by a failed build, stale entries refused."""

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from distillab.errors import DataError
from distillab.utils.artefacts import StaleArtefactError, build_once, recorded_spec

SPEC = {"k": 16, "data": {"fingerprint": "abc", "max_target_len": 12}}


def _writer(calls: list):
    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "payload.txt").write_text("built")

    return build


def test_builds_once_and_records_the_spec(tmp_path):
    calls = []
    path = tmp_path / "cache" / "key"
    assert build_once(path, SPEC, _writer(calls)) == path
    assert build_once(path, dict(SPEC), _writer(calls)) == path
    assert len(calls) == 1
    assert (path / "payload.txt").read_text() == "built"
    assert recorded_spec(path) == SPEC
    assert "created" in json.loads((path / "artefact.json").read_text())
    assert not calls[0].exists()  # the temp dir became the entry
    # tuples and lists are the same JSON: still the same spec
    as_tuples = {**SPEC, "dims": (1, 2)}
    build_once(tmp_path / "t", {**SPEC, "dims": [1, 2]}, _writer(calls))
    assert build_once(tmp_path / "t", as_tuples, _writer(calls)) == tmp_path / "t"
    assert len(calls) == 2


def test_a_failing_build_leaves_nothing_and_releases_the_lock(tmp_path):
    path = tmp_path / "key"

    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        build_once(path, SPEC, broken)
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["key.lock"]  # no temp dir left either
    with FileLock(str(path) + ".lock", timeout=0):  # free: would raise Timeout if still held
        pass
    calls = []
    build_once(path, SPEC, _writer(calls))  # the next caller builds it
    assert len(calls) == 1 and (path / "payload.txt").exists()


def test_a_spec_mismatch_at_the_same_path_is_refused(tmp_path):
    path = tmp_path / "key"
    build_once(path, SPEC, _writer([]))
    other = {"k": 16, "data": {"fingerprint": "abc", "max_target_len": 20}}
    calls = []
    with pytest.raises(StaleArtefactError) as err:
        build_once(path, other, _writer(calls))
    assert isinstance(err.value, DataError)  # the CLI prints it and exits with status 2
    msg = str(err.value)
    assert str(path) in msg and "data.max_target_len: recorded 12, asked 20" in msg
    assert not calls and recorded_spec(path) == SPEC  # never rebuilt or overwritten


def test_a_directory_without_a_record_is_refused(tmp_path):
    path = tmp_path / "key"
    path.mkdir()
    (path / "encoded.npz").write_bytes(b"old layout")
    with pytest.raises(StaleArtefactError, match="no artefact.json"):
        build_once(path, SPEC, _writer([]))


def test_concurrent_threads_build_once(tmp_path):
    path = tmp_path / "key"
    calls, results = [], []
    start = threading.Barrier(4)

    def slow(tmp: Path) -> None:
        calls.append(tmp)
        time.sleep(0.3)
        (tmp / "payload.txt").write_text("built")

    def worker():
        start.wait()
        results.append(build_once(path, SPEC, slow))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [path] * 4


def _process_worker(path: str, counter: str) -> None:
    def build(tmp: Path) -> None:
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.3)
        (tmp / "payload.txt").write_text("built")

    build_once(Path(path), SPEC, build)


def test_concurrent_processes_build_once(tmp_path):
    path, counter = tmp_path / "key", tmp_path / "builds.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_process_worker, args=(str(path), str(counter))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert counter.read_text().count("built") == 1
    assert (path / "payload.txt").read_text() == "built"


def test_a_staged_build_keeps_its_work_when_it_fails_and_resumes_from_it(tmp_path):
    path, staging = tmp_path / "entry", tmp_path / "entry.partial"

    def fails(out):
        (out / "step1").write_text("done")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        build_once(path, {"k": 1}, fails, staging=staging)
    assert not path.exists() and (staging / "step1").read_text() == "done"
    seen = []

    def resumes(out):
        seen.append((out / "step1").exists())
        (out / "step2").write_text("done")

    build_once(path, {"k": 1}, resumes, staging=staging)
    assert seen == [True] and (path / "step1").exists() and (path / "step2").exists()
    assert not staging.exists() and recorded_spec(path) == {"k": 1}


def test_wait_built_waits_for_the_builder_and_gives_up_when_it_is_gone(tmp_path):
    """DDP ranks > 0 wait for rank 0's registry entry; a rank 0 that stopped is an error."""
    from distillab.utils.artefacts import wait_built

    spec = {"k": 1}
    timer = threading.Timer(0.3, lambda: build_once(tmp_path / "a", spec, lambda d: None))
    timer.start()
    assert wait_built(tmp_path / "a", spec, lambda: None, poll_s=0.05) == tmp_path / "a"
    with pytest.raises(DataError, match="not built: rank 0 stopped"):
        wait_built(tmp_path / "b", spec, lambda: "rank 0 stopped", poll_s=0.05)
