"""Attention maps of a student (and its teacher) and how closely their alignments agree.

Both maps are teacher-forced on the same gold response: row `j` is where the model looks in
the source while predicting response token `j`. Agreement is the mean Jensen-Shannon
divergence (base 2, so in [0, 1]: 0 = identical rows, 1 = disjoint) between the student's
and the teacher's rows, over real response positions, each row over real source tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from distillab.teachers import Teacher

EPS = 1e-12


@torch.no_grad()
def attention_maps(model: torch.nn.Module, batch: dict) -> Tensor:
    """`[B, T_tgt, T_src]` attention of a distillab seq2seq model, teacher-forced on the batch."""
    args = (batch.src, batch.src_mask, batch.tgt_in)
    return model(*args, conv=batch.conversation).attn.float()


@torch.no_grad()
def teacher_attention(teacher: Teacher, batch: dict) -> Tensor | None:
    """The teacher's `[B, T_tgt, T_src]` map, or None where the teacher has none to give."""
    attn = teacher.outputs(batch).attn
    return None if attn is None else attn.float()


def _rows(attn: Tensor, key_mask: Tensor) -> Tensor:
    """Rows restricted to real keys and renormalised (a distribution per query)."""
    a = attn.clamp(min=0) * key_mask.unsqueeze(1)
    return a / a.sum(-1, keepdim=True).clamp(min=EPS)


def attention_js_rows(student_attn: Tensor, teacher_attn: Tensor, key_mask: Tensor) -> Tensor:
    """Jensen-Shannon divergence (bits) per row: `[B, T_tgt]`."""
    p, q = _rows(student_attn, key_mask), _rows(teacher_attn, key_mask)
    m = 0.5 * (p + q)

    def kl(a: Tensor, b: Tensor) -> Tensor:
        return (a * (torch.log2(a.clamp(min=EPS)) - torch.log2(b.clamp(min=EPS)))).sum(-1)

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).clamp(min=0.0, max=1.0)


def attention_js(
    student_attn: Tensor, teacher_attn: Tensor, query_mask: Tensor, key_mask: Tensor
) -> float:
    """Mean JS divergence over real query rows (`query_mask [B, T_tgt]`); keys outside
    `key_mask [B, T_src]` are ignored."""
    js = attention_js_rows(student_attn, teacher_attn, key_mask)
    q = query_mask.to(js.dtype)
    return float((js * q).sum() / q.sum().clamp(min=1.0))


def plot_attention(
    maps: Sequence[Tensor],
    titles: Sequence[str],
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    path: Path,
    caption: str = "",
) -> Path:
    """One PNG with the maps side by side (`[T_tgt, T_src]` each, already cut to the real
    tokens): source tokens on the x axis, response tokens on the y axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    n = len(maps)
    width = max(3.0, 0.35 * len(src_tokens) + 1.5)
    height = max(2.5, 0.35 * len(tgt_tokens) + 1.5)
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    for ax, attn, title in zip(axes[0], maps, titles, strict=True):
        ax.imshow(attn.cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tgt_tokens)), tgt_tokens, fontsize=7)
        ax.set_xlabel("source (context)")
        ax.set_ylabel("response (predicting)")
        ax.set_title(title, fontsize=9)
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def token_labels(tokenizer, ids: Sequence[int]) -> list[str]:
    """Readable token strings (byte-level BPE's `Ġ` space marker shown as `_`)."""
    return [t.replace("Ġ", "_") for t in tokenizer.convert_ids_to_tokens(list(ids))]


def plot_batch(
    model: torch.nn.Module,
    batch: dict,
    tokenizer,
    out_dir: Path,
    teacher: Teacher | None = None,
    limit: int | None = None,
    prefix: str = "dialogue",
) -> tuple[list[Path], float | None]:
    """Heatmaps of the first `limit` dialogues of `batch` (student, and the teacher beside
    it), and the mean JS divergence over the whole batch (None without a teacher map)."""
    student = attention_maps(model, batch)
    t_attn = teacher_attention(teacher, batch) if teacher is not None else None
    query_mask, key_mask = batch.tgt_mask, batch.src_mask
    js = None if t_attn is None else attention_js(student, t_attn, query_mask, key_mask)
    rows = None if t_attn is None else attention_js_rows(student, t_attn, key_mask)
    paths = []
    for i in range(min(limit or student.size(0), student.size(0))):
        s_len, t_len = int(key_mask[i].sum()), int(query_mask[i].sum())
        src = token_labels(tokenizer, batch.src[i, :s_len].tolist())
        tgt = token_labels(tokenizer, batch.tgt_out[i, :t_len].tolist())
        maps, titles = [student[i, :t_len, :s_len]], ["student"]
        caption = ""
        if t_attn is not None:
            maps.append(t_attn[i, :t_len, :s_len])
            titles.append("teacher")
            row_js = float((rows[i, :t_len]).mean())
            caption = f"JS divergence student vs teacher: {row_js:.3f} bits"
        name = f"{prefix}_{int(batch.index[i]):05d}.png"
        paths.append(plot_attention(maps, titles, src, tgt, out_dir / name, caption))
    return paths, js


@torch.no_grad()
def mean_attention_js(model: torch.nn.Module, teacher: Teacher, loader) -> float | None:
    """Token-weighted mean JS divergence between a student's and a teacher's attention over a
    whole loader (e.g. the validation split); None if the teacher gives no attention."""
    total, count = 0.0, 0.0
    for batch in loader:
        t_attn = teacher_attention(teacher, batch)
        if t_attn is None:
            return None
        js = attention_js_rows(attention_maps(model, batch), t_attn, batch.src_mask)
        q = batch.tgt_mask.to(js.dtype)
        total += float((js * q).sum())
        count += float(q.sum())
    return total / max(count, 1.0)
