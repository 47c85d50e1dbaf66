"""distillab.checkpoint: Lightning checkpoints read with weights_only=True; every unusable file
refused in one line naming it; the network rebuilt without its LightningModule."""

from __future__ import annotations

import ast
import hashlib
import shutil
import zipfile

import pytest
import torch

from distillab.checkpoint import (
    CheckpointError,
    check_checkpoint,
    load_model,
    model_weights,
    read_checkpoint,
)
from distillab.decoding import Greedy
from distillab.errors import DistillabError
from distillab.modules.reliability import SafeCheckpointIO
from distillab.teachers.checkpoint import CheckpointTeacher
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg
from tests.runs.test_resume import ROOT

SRC = ROOT / "src"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run's Lightning checkpoints (last and best: validation every 2 steps)."""
    tmp = tmp_path_factory.mktemp("ckpt")
    run_job(compose_cfg([*TINY, "trainer.val_check_interval=2"], tmp))
    return tmp / "run" / "checkpoints"


def test_a_lightning_checkpoint_loads_weights_only_with_everything_resume_needs(trained):
    state = read_checkpoint(trained / "last.ckpt")
    # what a resume restores: the optimiser, scheduler, loops, callback (RNG) and data states
    for key in ("optimizer_states", "lr_schedulers", "loops", "callbacks", "DialogueDataModule"):
        assert state[key], key
    assert state["global_step"] == 6 and "RngState" in state["callbacks"]
    # the whole file reads as plain data: torch refuses any other type with weights_only=True
    assert torch.load(trained / "last.ckpt", weights_only=True)["global_step"] == 6
    model = load_model(trained / "last.ckpt")
    assert not model.training
    weights = model_weights(state)
    assert weights and all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert check_checkpoint(trained / "best.ckpt")["global_step"] in (2, 4, 6)


class Foreign:
    """A type no distillab checkpoint holds: unpickling it could run code."""


def _flip_middle(good: bytes) -> bytes:
    bad = bytearray(good)
    mid = len(bad) // 2
    bad[mid : mid + 64] = bytes(b ^ 0xFF for b in bad[mid : mid + 64])
    return bytes(bad)


BAD_FILES = {
    "missing": (None, "no such file"),
    "empty": (lambda good, p: p.write_bytes(b""), "empty (0 bytes)"),
    "truncated": (lambda good, p: p.write_bytes(good[: len(good) // 2]), "truncated"),
    "damaged": (lambda good, p: p.write_bytes(_flip_middle(good)), "fails its checksum"),
    "text": (lambda good, p: p.write_text("not a model\n"), "not a PyTorch checkpoint"),
    "zip": (
        lambda good, p: zipfile.ZipFile(p, "w").writestr("notes/a.txt", "x"),
        "zip archive that is not a PyTorch checkpoint",
    ),
    "tensors": (
        lambda good, p: torch.save({"w": torch.ones(2)}, p),
        "without state_dict and hyper_parameters",
    ),
    "list": (lambda good, p: torch.save([1, 2], p), "holding a list"),
    "code": (
        lambda good, p: torch.save({"state_dict": {}, "hyper_parameters": Foreign()}, p),
        "other than tensors and plain data (tests.test_checkpoint.Foreign)",
    ),
    "no weights": (
        lambda good, p: torch.save({"state_dict": {}, "hyper_parameters": {}}, p),
        "holds no model weights",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_an_unusable_file_is_one_line_naming_it_and_what_is_wrong(trained, tmp_path, kind):
    make, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind.replace(' ', '_')}.ckpt"
    if make is not None:
        make((trained / "last.ckpt").read_bytes(), path)
    for reader in (read_checkpoint, check_checkpoint, load_model):
        with pytest.raises(CheckpointError) as e:
            reader(path)
        message = str(e.value)
        assert isinstance(e.value, DistillabError) and "\n" not in message
        assert str(path) in message and expected in message, message


def test_checkpoint_teacher_is_the_network_and_decodes_like_its_module(trained):
    ckpt = trained / "last.ckpt"
    teacher = CheckpointTeacher(str(ckpt))
    assert teacher.identity == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    hp = read_checkpoint(ckpt)["hyper_parameters"]
    assert teacher.vocab_hash == hp["vocab_hash"] and teacher.hidden_size == 32
    assert not any(p.requires_grad for p in teacher.model.parameters())
    src = torch.randint(3, hp["vocab_size"], (2, 5))
    mask = torch.ones_like(src, dtype=torch.bool)
    expected = Greedy()(
        load_model(ckpt), src, mask, bos_id=hp["bos_id"], eos_id=hp["eos_id"], max_len=12
    )
    assert hp["max_decode_len"] == 12 and torch.equal(teacher.generate(src, mask), expected)


def imported(module: str) -> set[str]:
    """The distillab modules `module` imports, transitively, function-level imports included."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        base = SRC / name.replace(".", "/")
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return {m for m in seen if m.startswith("distillab")}


def test_teachers_and_the_checkpoint_reader_import_no_lightning_module():
    for start in ("distillab.checkpoint", "distillab.teachers.checkpoint"):
        found = imported(start)
        assert "distillab.models.build" in found or start != "distillab.checkpoint"
        assert not {m for m in found if m.startswith("distillab.modules")}, start


def test_a_failed_save_leaves_the_last_checkpoint_whole_and_the_replaced_one_is_kept(
    trained, tmp_path, monkeypatch
):
    io, last = SafeCheckpointIO(), tmp_path / "last.ckpt"
    good = read_checkpoint(trained / "last.ckpt")
    io.save_checkpoint({**good, "global_step": 1}, last)
    io.save_checkpoint({**good, "global_step": 2}, last)
    assert read_checkpoint(last)["global_step"] == 2
    assert read_checkpoint(tmp_path / "last.prev.ckpt")["global_step"] == 1

    def cut_short(obj, f, *args, **kwargs):  # a full disk or a kill in the middle of a write
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", cut_short)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({**good, "global_step": 3}, last)
    monkeypatch.undo()
    assert read_checkpoint(last)["global_step"] == 2  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.prev.ckpt"]
    best = tmp_path / "best.ckpt"  # only last.ckpt keeps its predecessor
    shutil.copy(last, best)
    io.save_checkpoint({**good, "global_step": 4}, best)
    assert not (tmp_path / "best.prev.ckpt").exists() and read_checkpoint(best)["global_step"] == 4
