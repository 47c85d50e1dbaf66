"""Distillation: frozen teachers, teacher resolution, init from teacher, multi-teacher, seqKD."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from distillab.decoding import build_strategy
from distillab.errors import ConfigError
from distillab.losses import distill_objective, kd_loss
from distillab.losses.terms import gold_terms, smoothed_nll
from distillab.modules.distill import DistillationModule, init_student_from_teacher
from distillab.pipelines.seqkd import use_teacher_decodes
from distillab.teachers import CheckpointTeacher
from distillab.train import run_job
from tests.conftest import TINY, TINY_TEACHER, compose_cfg, make_batch, started, student_of
from tests.teachers.test_base import Plain


def kd_of(module, batch):
    """The unweighted kd term of a distillation module on a batch."""
    ctx = module.loss_context(module(batch), batch, 0.0)
    return module.objective.terms["kd"](ctx)


TEACHER = TINY_TEACHER


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """One tiny distillation run with teacher.ckpt=auto: the teacher is trained and registered."""
    root = tmp_path_factory.mktemp("distill")
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER], root)
    metrics = run_job(cfg)
    (entry,) = (root / "outputs" / "teachers").glob("*/registry.json")
    ckpt = str(entry.parent / json.loads(entry.read_text())["checkpoint"])  # relative to entry
    return {"root": root, "cfg": cfg, "metrics": metrics, "registry": entry, "ckpt": ckpt}


def test_distill_run_trains_registers_and_reuses_teacher(distilled, tmp_path):
    assert np.isfinite(distilled["metrics"]["val/ppl"])
    assert Path(distilled["ckpt"]).is_file()
    stamp = distilled["registry"].stat().st_mtime_ns
    # a second job with the same teacher settings and data finds it in the registry
    cfg = compose_cfg(
        ["experiment=distill", *TINY, *TEACHER, "distill.objective.alpha=0.9"], tmp_path
    )
    cfg.paths.output_root = str(distilled["root"] / "outputs")
    run_job(cfg)
    assert distilled["registry"].stat().st_mtime_ns == stamp
    assert len(list((distilled["root"] / "outputs" / "teachers").glob("*/registry.json"))) == 1


def test_teacher_is_frozen_and_not_in_student_state(distilled, tmp_path):
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER], tmp_path)
    ckpt = distilled["ckpt"]
    r = started(cfg)
    module = student_of(r, [CheckpointTeacher(ckpt)])
    teacher = module.teachers[0].model
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(k.startswith(("model.", "objective.")) for k in module.state_dict())
    assert module.hparams.teacher_ids == [CheckpointTeacher(ckpt).identity]
    assert module.teachers[0].source == str(ckpt) and module.teachers[0].checkpoint == str(ckpt)
    assert "teachers" not in module.hparams
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in module.parameters()}


@pytest.mark.slow
def test_missing_teacher_checkpoint_fails_at_start(tmp_path):
    missing = tmp_path / "nope.ckpt"
    cmd = [
        sys.executable,
        "-m",
        "distillab.train",
        "experiment=distill",
        f"teacher.ckpt={missing}",
        f"paths.output_root={tmp_path}",
        *TINY,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"teacher.ckpt={missing}: no such checkpoint file" in proc.stderr


def test_teacher_with_other_vocabulary_is_refused(distilled, tmp_path):
    ckpt = distilled["ckpt"]
    cfg = compose_cfg(["experiment=distill", *TINY, "data.vocab_size=350"], tmp_path)
    r = started(cfg)
    with pytest.raises(ConfigError) as err:
        student_of(r, [CheckpointTeacher(ckpt)])
    assert r.data.vocab_hash in str(err.value) and r.data.fingerprint in str(err.value)


def test_multi_teacher_weights(distilled, tmp_path):
    ckpt = distilled["ckpt"]
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER], tmp_path)
    r = started(cfg)
    single = student_of(r, [CheckpointTeacher(ckpt)])
    pair = student_of(r, [CheckpointTeacher(ckpt), CheckpointTeacher(ckpt, 3.0)])
    pair.model.load_state_dict(single.model.state_dict())
    single.eval(), pair.eval()  # no dropout: the student's outputs are the same in both
    batch = next(iter(r.data.val_dataloader()))
    # the same teacher twice, whatever the weights, is that teacher
    a, b = kd_of(single, batch), kd_of(pair, batch)
    torch.testing.assert_close(a, b)
    # a second, different teacher changes the target
    with torch.no_grad():
        for p in pair.teachers[1].model.parameters():
            p.add_(torch.randn_like(p))
    c = kd_of(pair, batch)
    assert not torch.allclose(a, c)


def test_init_from_teacher_copies_matching_shapes_and_projects_embeddings(distilled, tmp_path):
    ckpt = distilled["ckpt"]
    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER], tmp_path)
    r = started(cfg)
    teacher = CheckpointTeacher(ckpt).model
    # same architecture: everything is copied, outputs are identical
    same = compose_cfg(
        [
            "experiment=distill",
            *TINY,
            "model.emb_dim=24",
            "model.hidden_size=48",
            "model.tie_embeddings=false",
        ],
        tmp_path,
    )
    twin = student_of(r, [CheckpointTeacher(ckpt)], same).model
    copied = init_student_from_teacher(twin, teacher)
    assert len(copied) == len(list(twin.parameters()))
    batch = next(iter(r.data.val_dataloader()))
    twin.eval()
    args = (batch.src, batch.src_mask, batch.tgt_in)
    torch.testing.assert_close(twin(*args).logits, teacher(*args).logits)
    # narrower embedding: projected with the teacher's principal directions
    small = student_of(r, [CheckpointTeacher(ckpt)]).model  # emb 16 vs 24
    copied = init_student_from_teacher(small, teacher)
    assert any("projected 24->16" in c for c in copied)
    u, s, _ = torch.linalg.svd(teacher.embedding.weight, full_matrices=False)
    torch.testing.assert_close(small.embedding.weight, u[:, :16] * s[:16])


def test_schedules():
    obj = distill_objective(
        *gold_terms(0.0, None, None), alpha=0.2, alpha_end=0.8, temperature=4.0, temperature_end=1.0
    )
    assert obj.weights(0.0) == pytest.approx({"ce": 0.8, "kd": 0.2})
    assert obj.temperature(0.0) == 4.0
    assert obj.weights(0.5) == pytest.approx({"ce": 0.5, "kd": 0.5})
    assert obj.temperature(0.5) == pytest.approx(2.5)
    assert obj.weights(2.0) == pytest.approx({"ce": 0.2, "kd": 0.8})
    assert obj.temperature(2.0) == pytest.approx(1.0)
    # the ranges: the config's (tests/config/test_objective.py), checked once, before any work


def test_objective_is_the_weighted_sum_of_its_named_terms(distilled, tmp_path):
    ckpt = distilled["ckpt"]
    cfg = compose_cfg(["experiment=distill", "distill=combined", *TINY, *TEACHER], tmp_path)
    cfg.distill.objective.alpha = 0.3
    r = started(cfg)
    module = student_of(r, [CheckpointTeacher(ckpt)])
    module.eval()
    batch = next(iter(r.data.val_dataloader()))
    ctx = module.loss_context(module(batch), batch, 0.0)
    total, values, weights = module.objective(ctx, 0.0)
    assert set(values) == {"ce", "kd", "hidden", "attention"}
    assert weights == pytest.approx({"ce": 0.7, "kd": 0.3, "hidden": 0.5, "attention": 0.5})
    torch.testing.assert_close(total, sum(weights[n] * v for n, v in values.items()))
    assert all(v.ndim == 0 and torch.isfinite(v) and v > 0 for v in values.values())


def test_seqkd_decodes_once_and_trains_on_them(distilled, tmp_path):
    cfg = compose_cfg(["experiment=distill", "distill=seqkd", *TINY, *TEACHER], tmp_path)
    cfg.paths.output_root = str(distilled["root"] / "outputs")
    cfg.paths.cache_dir = str(distilled["root"] / "outputs" / "cache")
    run_job(cfg)
    (done,) = (distilled["root"] / "outputs" / "cache" / "seqkd").glob("*/artefact.json")
    cache, stamp = done.parent, done.stat().st_mtime_ns
    cfg2 = compose_cfg(["experiment=distill", "distill=seqkd", *TINY, *TEACHER], tmp_path / "b")
    cfg2.paths.output_root, cfg2.paths.cache_dir = cfg.paths.output_root, cfg.paths.cache_dir
    dm = started(cfg2).data
    teacher = CheckpointTeacher(distilled["ckpt"])
    decoding = OmegaConf.to_container(cfg2.distill.seqkd.decoding, resolve=True)
    strategy = build_strategy(decoding)
    assert use_teacher_decodes(dm, teacher, strategy, decoding, 0.0, cfg2.paths.cache_dir) == cache
    assert done.stat().st_mtime_ns == stamp
    # gold_fraction=0: every training target is the teacher's greedy decode of its input
    item = dm.datasets["train"][0]
    src = torch.as_tensor(item["src"])[None].long()
    hyp = teacher.generate(src, torch.ones_like(src, dtype=torch.bool))[0].tolist()
    hyp = hyp[: hyp.index(dm.eos_id)] if dm.eos_id in hyp else hyp
    assert (
        item["tgt"].tolist() == [t for t in hyp if t != dm.pad_id][: cfg2.data.max_target_len - 1]
    )


def test_teacher_agreement_is_one_for_the_teacher_and_less_for_another_model(distilled, tmp_path):
    from distillab.pipelines.compare import teacher_agreement

    cfg = compose_cfg(["experiment=distill", *TINY, *TEACHER], tmp_path)
    dm = started(cfg).data
    teacher = CheckpointTeacher(distilled["ckpt"])
    other = copy.deepcopy(teacher.model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5 * torch.randn_like(p))
    loader = dm.val_dataloader()
    same, different = teacher_agreement([teacher.model, other], teacher, loader)
    assert same == 1.0 and 0.0 <= different < 0.9


@pytest.mark.slow
def test_quickstart_writes_comparison(tmp_path):
    cfg = compose_cfg(
        [
            "experiment=quickstart",
            *TINY,
            *TEACHER,
            "data.max_train_examples=100",
            "trainer.check_val_every_n_epoch=1",
        ],
        tmp_path,
    )
    out = run_job(cfg)
    comparison = json.loads((tmp_path / "run" / "comparison.json").read_text())
    assert set(comparison) == {"teacher", "student_scratch", "student_distilled"}
    for role, m in comparison.items():
        assert {
            "val/ppl",
            "test/ppl",
            "val/bleu",
            "val/rougeL",
            "val/distinct2",
            "model/params",
            "time/train_s",
        } <= set(m), role
    assert (
        comparison["student_scratch"]["model/params"]
        == comparison["student_distilled"]["model/params"]
    )
    assert 0.0 <= comparison["student_distilled"]["val/teacher_agreement"] <= 1.0
    for role in ("student_scratch", "student_distilled"):
        assert 0.0 <= comparison[role]["val/attention_js"] <= 1.0
    table = (tmp_path / "run" / "comparison.md").read_text()
    assert "student_distilled" in table and "agreement" in table and "attention JS" in table
    assert out["val/ppl"] == comparison["student_distilled"]["val/ppl"]


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_smoothed_nll_equals_cross_entropy(smoothing):
    logits = torch.randn(3, 5, 11, dtype=torch.float64)
    targets = torch.randint(1, 11, (3, 5))
    targets[0, 3:] = 0  # padding
    ref = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=0, label_smoothing=smoothing
    )
    log_probs = torch.log_softmax(logits, -1)
    torch.testing.assert_close(smoothed_nll(log_probs, targets, 0, smoothing), ref)


TINY_MODULE = dict(
    model={"_target_": "distillab.models.Seq2Seq", "emb_dim": 8, "hidden_size": 8},
    vocab_size=20,
    pad_id=0,
    bos_id=1,
    eos_id=2,
)


def test_init_from_teacher_needs_a_teacher_with_weights():
    objective = distill_objective(*gold_terms(0.0, None, None), alpha=0.5, temperature=1.0)
    with pytest.raises(ConfigError, match="needs a teacher with weights"):
        DistillationModule(
            objective=objective,
            teachers=[Plain()],  # no distillab weights
            init_from_teacher=True,
            **TINY_MODULE,
        )


def test_the_module_trains_the_objective_it_is_given_and_records_its_config():
    objective = distill_objective(
        *gold_terms(0.0, None, None), alpha=0.3, temperature=4.0, temperature_end=1.0
    )
    module = DistillationModule(objective=objective, teachers=[Plain()], **TINY_MODULE)
    assert module.objective is objective  # not rebuilt from a config
    assert module.hparams.objective_config == objective.config
    assert module.hparams.objective_config["temperature_end"] == 1.0
    # live objects stay out of checkpoints, and no recorded name is a constructor argument
    # of the plain module (evaluation passes the recorded ones back to it)
    assert not {"network", "objective", "teachers"} & set(module.hparams)


@pytest.mark.parametrize(("progress", "temperature"), [(0.0, 4.0), (0.5, 2.5), (1.0, 1.0)])
def test_the_temperature_schedule_reaches_the_loss_context_and_the_kd_term(progress, temperature):
    objective = distill_objective(
        *gold_terms(0.0, None, None), alpha=0.5, temperature=4.0, temperature_end=1.0
    )
    module = DistillationModule(objective=objective, teachers=[Plain()], **TINY_MODULE).eval()
    batch = make_batch(2, tgt_len=3)
    out = module(batch)
    ctx = module.loss_context(out, batch, progress)
    assert ctx.temperature == pytest.approx(temperature)
    teacher_logits = Plain().outputs(batch).logits[0]
    want = kd_loss(out.logits, teacher_logits, temperature, batch.tgt_mask)
    torch.testing.assert_close(module.objective.terms["kd"](ctx), want)
