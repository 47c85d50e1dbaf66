"""A student learning from frozen teacher(s).

Teachers are kept in a plain list, not as submodules: they are never trained, never in the
optimiser and never written into the student's checkpoint (the checkpoint stores their paths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor

from distillab.errors import ConfigError
from distillab.losses.objective import CachedTeacher
from distillab.models import Seq2SeqOutput
from distillab.modules.seq2seq import Seq2SeqModule


def load_teacher(ckpt: str, vocab_hash: str, student_data: str) -> Seq2SeqModule:
    """Load a frozen teacher; fail at start when its vocabulary is not the student's."""
    teacher = Seq2SeqModule.load_from_checkpoint(ckpt, map_location="cpu")
    theirs = teacher.hparams.get("vocab_hash", "")
    if theirs != vocab_hash:
        raise ConfigError(
            f"teacher {ckpt} was trained with a different tokenizer (vocab {theirs or '?'}, "
            f"data {teacher.hparams.get('data_fingerprint') or '?'}) than the student's data "
            f"(vocab {vocab_hash}, data {student_data}); train the teacher on the same data "
            "settings or use teacher.ckpt=auto"
        )
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


class DistillationModule(Seq2SeqModule):
    def __init__(
        self,
        objective: dict,
        teachers: list[dict],
        init_from_teacher: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not teachers:
            raise ConfigError("distillation needs at least one teacher (teacher.ckpt)")
        hp = self.hparams
        self.teachers = [
            load_teacher(t["ckpt"], hp.vocab_hash, hp.data_fingerprint) for t in teachers
        ]
        self.teacher_weights = [float(t.get("weight", 1.0)) for t in teachers]
        first = self.teachers[0].model
        self.objective = instantiate(
            objective, student_hidden=self.model.hidden_size, teacher_hidden=first.hidden_size
        )
        if init_from_teacher:
            self.copied = init_student_from_teacher(self.model, first)

    def _move_teachers(self) -> None:
        for t in self.teachers:
            t.to(self.device)

    def on_fit_start(self) -> None:
        self._move_teachers()

    def on_validation_start(self) -> None:
        self._move_teachers()

    def on_test_start(self) -> None:
        self._move_teachers()

    @torch.no_grad()
    def teacher_outputs(self, batch: dict) -> list[Seq2SeqOutput]:
        return [t(batch) for t in self.teachers]

    def progress(self) -> float:
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 0
        return self.global_step / total if total and total != float("inf") else 0.0

    def training_losses(self, out: Seq2SeqOutput, batch: dict) -> dict[str, Tensor]:
        log_probs = F.log_softmax(out.logits.float(), dim=-1)  # shared by CE and KD at T=1
        if "topk_values" in batch:  # cached teacher outputs came with the batch:
            # one gather serves the gold tokens and the cached ids (one [N, V] gradient buffer)
            ids = torch.cat([batch["tgt_out"].unsqueeze(-1), batch["topk_ids"]], dim=-1)
            picked = log_probs.gather(-1, ids)
            gold = self.gold_losses(out, batch, log_probs, picked[..., 0])
            topk = CachedTeacher(*(batch[f"topk_{f}"] for f in CachedTeacher._fields))
            teacher = {"topk": topk, "log_probs": picked[..., 1:]}
        else:
            gold = self.gold_losses(out, batch, log_probs)
            teacher = {"teachers": self.teacher_outputs(batch)}
        terms = self.objective(
            out,
            gold.pop("ce"),
            batch,
            self.progress(),
            teacher_weights=self.teacher_weights,
            **teacher,
        )
        return {**terms, **gold}


@torch.no_grad()
def init_student_from_teacher(student: torch.nn.Module, teacher: torch.nn.Module) -> list[str]:
    """Copy every tensor whose name and shape match; project the embedding when only its
    width differs (truncated SVD of the teacher's embedding: the directions that explain
    most of it). Everything else keeps its fresh initialisation. Returns what was set."""
    t_params = dict(teacher.named_parameters())
    copied = []
    for name, p in student.named_parameters():
        src = t_params.get(name)
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
