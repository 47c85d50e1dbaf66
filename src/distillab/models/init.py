"""Student from teacher: initialise a student network from a trained teacher's weights.

Every model family has an ``init_from(teacher, layer_map)`` method (the GRU copies what names
and shapes allow; a transformer copies chosen teacher layers into its shallower stacks, as in
DistilBERT and shrink-and-fine-tune). The helpers here are what those methods share.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from distillab.errors import ConfigError


@torch.no_grad()
def copy_matching(
    student: nn.Module, teacher: nn.Module, rename: dict[str, str] | None = None
) -> list[str]:
    """Copy every tensor whose name (after `rename`: student name -> teacher name) and shape
    match; project an embedding when only its width differs (truncated SVD of the teacher's
    embedding: the directions that explain most of it). Everything else keeps its fresh
    initialisation. Returns what was set."""
    t_params = dict(teacher.named_parameters())
    rename = rename or {}
    copied = []
    for name, p in student.named_parameters():
        src = t_params.get(rename.get(name, name))
        if src is None:
            continue
        if src.shape == p.shape:
            p.copy_(src)
            copied.append(name)
        elif name.endswith("embedding.weight") and src.shape[0] == p.shape[0]:
            u, s, _ = torch.linalg.svd(src.float(), full_matrices=False)
            k = min(p.shape[1], s.shape[0])
            p.zero_()
            p[:, :k] = (u[:, :k] * s[:k]).to(p.dtype)
            copied.append(f"{name} (projected {src.shape[1]}->{p.shape[1]})")
    return copied


def default_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer copied into each student layer: evenly strided from the first layer
    (every other layer when the teacher is twice as deep: 6 of 12 -> 0, 2, 4, 6, 8, 10)."""
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def check_layer_map(
    layer_map: Sequence[int] | None, student_layers: int, teacher_layers: int, stack: str
) -> list[int]:
    """`layer_map` (default: :func:`default_layer_map`) checked against both depths."""
    if layer_map is None:
        return default_layer_map(student_layers, teacher_layers)
    chosen = [int(i) for i in layer_map]
    if len(chosen) != student_layers:
        raise ConfigError(
            f"student.layer_map={list(chosen)} has {len(chosen)} entries but the student's "
            f"{stack} has {student_layers} layers (one teacher layer per student layer)"
        )
    bad = [i for i in chosen if not 0 <= i < teacher_layers]
    if bad:
        raise ConfigError(
            f"student.layer_map={list(chosen)}: layer {bad[0]} is out of range for the "
            f"teacher's {stack} of {teacher_layers} layers (0..{teacher_layers - 1})"
        )
    return chosen


def layer_renames(names: Sequence[str], prefix: str, layer_map: Sequence[int]) -> dict[str, str]:
    """Student parameter names under ``{prefix}{i}.`` -> the teacher's ``{prefix}{map[i]}.``."""
    out = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        index, _, rest = name[len(prefix) :].partition(".")
        if index.isdigit() and int(index) < len(layer_map):
            out[name] = f"{prefix}{layer_map[int(index)]}.{rest}"
    return out


def same_family(student: nn.Module, teacher: nn.Module) -> None:
    """Layer copying pairs layers of one architecture: refuse another family by name."""
    if type(student) is not type(teacher):
        raise ConfigError(
            f"student.init_from_teacher: a {type(student).__name__} student copies layers "
            f"from a teacher of its own family, not from a {type(teacher).__name__}"
        )
