"""Every teacher/student combination with transformers, as tiny `distillab-train` runs that
write metrics: a GRU teacher and a transformer registry teacher (each trained once for the
module), a tiny saved BART (`teacher=hf`), students `hf_seq2seq`, `hf_causal` and the GRU,
under the objectives (divergences, cached outputs, seq-KD, on-policy, several teachers,
hidden-state and attention transfer with layer maps, student from teacher)."""

import json

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from distillab.teachers import CheckpointTeacher
from distillab.train import run_job
from tests.conftest import TINY, TINY_TEACHER, compose_cfg, synthetic_conversations, write_jsonl
from tests.hf_tiny import save_tiny
from tests.jobs.test_distill_presets import Capture

DATA = [t for t in TINY if not t.startswith("model.")]
SIZES = ["model.hidden_size=16", "model.attention_heads=2", "model.ffn_size=32"]
STUDENTS = {
    "hf_seq2seq": ["model=hf_seq2seq", *SIZES, "model.enc_layers=1", "model.dec_layers=1"],
    "hf_causal": ["model=hf_causal", *SIZES, "model.layers=2"],
    "gru": [t for t in TINY if t.startswith("model.")],
}
TEACHERS = {
    "gru": TINY_TEACHER,
    "transformer": [
        "teacher=transformer",
        "teacher.train.model.hidden_size=16",
        "teacher.train.model.attention_heads=2",
        "teacher.train.model.ffn_size=32",
        "teacher.train.model.enc_layers=2",
        "teacher.train.model.dec_layers=2",
        "teacher.train.trainer.max_steps=6",
        "teacher.train.module.decode_examples=8",
        "teacher.train.scheduler.warmup_steps=2",
    ],
    "causal": [
        "teacher=causal",
        "teacher.train.model.hidden_size=16",
        "teacher.train.model.attention_heads=2",
        "teacher.train.model.ffn_size=32",
        "teacher.train.model.layers=2",
        "teacher.train.trainer.max_steps=6",
        "teacher.train.module.decode_examples=8",
        "teacher.train.scheduler.warmup_steps=2",
    ],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("transformers")


def distil(root, tmp_path, teacher: str, student: str, extra: list[str]) -> dict:
    """A distillation run sharing the module's registry; returns its saved metrics
    (`Capture.seen` keeps its module and first batch)."""
    overrides = ["experiment=distill", *DATA, *TEACHERS[teacher], *STUDENTS[student], *extra]
    cfg = compose_cfg([*overrides, "trainer.log_every_n_steps=1"], tmp_path)
    cfg.paths.output_root = str(root / "outputs")
    cfg.paths.cache_dir = str(root / "outputs" / "cache")
    with open_dict(cfg):
        cfg.callbacks.capture = {"_target_": "tests.jobs.test_distill_presets.Capture"}
    Capture.seen = {}
    metrics = run_job(cfg)
    assert np.isfinite(metrics["val/ppl"]) and metrics["trainer/global_step"] == 6
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val/ppl"] == metrics["val/ppl"]
    return saved


def registry_checkpoint(root, kind: str) -> str:
    for entry in (root / "outputs" / "teachers").glob("*/registry.json"):
        ckpt = entry.parent / json.loads(entry.read_text())["checkpoint"]
        if type(CheckpointTeacher(str(ckpt)).model).__name__ == kind:
            return str(ckpt)
    raise AssertionError(f"no {kind} teacher in the registry")


# ---- quick: one run per combination ------------------------------------------------------
@pytest.mark.parametrize(
    ("teacher", "student", "extra"),
    [("gru", "hf_seq2seq", ["distill=combined"]),
     ("gru", "hf_causal", ["distill=attention"]),
     ("transformer", "gru", ["distill=hidden"]),
     ("causal", "hf_causal", ["distill=hidden"])],
)  # fmt: skip
def test_combination_writes_metrics(root, tmp_path, teacher, student, extra):
    saved = distil(root, tmp_path, teacher, student, extra)
    assert saved["model/params"] > 0
    if teacher == "causal":  # teacher=causal: a decoder-only registry teacher
        registry_checkpoint(root, "HFCausal")


def test_transformer_student_from_a_transformer_teacher_copies_layers_and_transfers(root, tmp_path):
    """A 1+1-layer student of the 2+2-layer registry teacher: layers copied by the map,
    hidden states (student layer 0 <- teacher layer 1) and attention of every layer pair."""
    extra = [
        "student.init_from_teacher=true",
        "student.layer_map=[1]",
        "distill=combined",
        "+distill.objective.terms.hidden.student_layers=[0]",
        "+distill.objective.terms.hidden.teacher_layers=[1]",
        "+distill.objective.terms.attention.student_layers=[0,0]",
        "+distill.objective.terms.attention.teacher_layers=[0,1]",
    ]
    distil(root, tmp_path, "transformer", "hf_seq2seq", extra)
    logged = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "train/hidden" in logged and "train/attention" in logged
    teacher = dict(
        CheckpointTeacher(registry_checkpoint(root, "HFSeq2Seq")).model.named_parameters()
    )
    module, state = Capture.seen["module"], Capture.seen["state"]
    layer = "net.model.encoder.layers.0.fc1.weight"
    assert layer in module.copied and "net.model.shared.weight" in module.copied
    # at step 0 the student's layer 0 is the teacher's layer 1 (student.layer_map=[1])
    torch.testing.assert_close(state[layer], teacher[layer.replace("layers.0", "layers.1")])
    assert not torch.equal(state[layer], teacher[layer])


@pytest.mark.parametrize("student", ["hf_seq2seq", "hf_causal"])
def test_saved_bart_teacher_to_transformer_student(tmp_path, student):
    bart = save_tiny("bart", tmp_path / "bart")
    data = write_jsonl(tmp_path / "dialogues.jsonl", synthetic_conversations(40))
    overrides = ["experiment=distill", "teacher=hf", f"teacher.path={bart}", "data=jsonl",
                 f"data.path={data}", *DATA, *STUDENTS[student], "distill=hidden"]  # fmt: skip
    cfg = compose_cfg(overrides, tmp_path)
    metrics = run_job(cfg)
    assert np.isfinite(metrics["val/ppl"])
    assert (tmp_path / "run" / "metrics.json").is_file()


# ---- the objectives on transformer students (slow: a run each) -----------------------------
@pytest.mark.slow
@pytest.mark.parametrize("student", ["hf_seq2seq", "hf_causal"])
@pytest.mark.parametrize(
    "extra",
    [["distill.objective.divergence=reverse_kl"],
     ["distill.objective.divergence=jsd"],
     ["distill.objective.divergence=tvd"],
     ["distill.teacher_outputs=cached", "distill.topk=4", "distill.tail_samples=2"],
     ["distill=seqkd"],
     ["distill=onpolicy"]],
    ids=["reverse_kl", "jsd", "tvd", "cached", "seqkd", "onpolicy"],
)  # fmt: skip
def test_objective_trains_a_transformer_student(root, tmp_path, student, extra):
    distil(root, tmp_path, "gru", student, extra)


@pytest.mark.slow
@pytest.mark.parametrize("student", ["hf_seq2seq", "hf_causal"])
def test_two_teachers_gru_and_transformer(root, tmp_path, student):
    distil(root, tmp_path, "gru", student, [])  # both registry teachers exist after this
    distil(root, tmp_path / "t", "transformer", student, [])
    gru = registry_checkpoint(root, "Seq2Seq")
    distil(root, tmp_path / "m", "transformer", student, [f"extra_teachers=[{{ckpt: {gru}}}]"])


@pytest.mark.slow
def test_transformer_teacher_decodes_for_seqkd_with_its_cache(root, tmp_path):
    distil(root, tmp_path, "transformer", "hf_causal", ["distill=seqkd"])
    ckpt = registry_checkpoint(root, "HFSeq2Seq")
    teacher = CheckpointTeacher(ckpt)
    src = torch.randint(6, 50, (2, 5))
    hyps = teacher.generate(src, torch.ones_like(src, dtype=torch.bool))
    assert hyps.shape[0] == 2 and hyps.shape[1] <= teacher.hparams["max_decode_len"]
