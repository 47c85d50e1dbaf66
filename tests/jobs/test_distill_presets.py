"""Every distillation preset, extra teachers and init-from-teacher run end to end at tiny size,
sharing one registry teacher (trained once for the module). A callback (`Capture`) keeps the
run's distillation module and its first training batch, so each case asserts the behaviour it
names on what the run really trained with."""

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from distillab.losses.kd import kd_loss_from_probs
from distillab.teachers import CachedTeacher, CheckpointTeacher
from distillab.train import run_job
from distillab.utils.io import file_sha256, fingerprint
from tests.conftest import TINY, TINY_TEACHER, compose_cfg


class Capture(pl.Callback):
    """The module, its student's weights and the batch at the first training step."""

    seen: dict = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not Capture.seen:
            state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
            Capture.seen.update(module=pl_module, batch=batch, state=state)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An output root whose registry holds the tiny teacher (trained by a first distill run)."""
    root = tmp_path_factory.mktemp("presets")
    cfg = compose_cfg(["experiment=distill", *TINY, *TINY_TEACHER], root / "first")
    cfg.paths.output_root = str(root / "outputs")
    cfg.paths.cache_dir = str(root / "outputs" / "cache")
    run_job(cfg)
    (entry,) = (root / "outputs" / "teachers").glob("*/registry.json")
    return root, str(entry.parent / json.loads(entry.read_text())["checkpoint"])


def run_preset(registry, tmp_path, overrides: list[str]) -> dict:
    """Run a distillation job; returns what `Capture` kept, with the job's metrics."""
    root, _ = registry
    cfg = compose_cfg(["experiment=distill", *TINY, *TINY_TEACHER, *overrides], tmp_path)
    cfg.paths.output_root = str(root / "outputs")
    cfg.paths.cache_dir = str(root / "outputs" / "cache")
    with open_dict(cfg):
        cfg.callbacks.capture = {"_target_": f"{__name__}.Capture"}
    Capture.seen = {}
    metrics = run_job(cfg)
    assert np.isfinite(metrics["val/ppl"]) and metrics["trainer/global_step"] == 6
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val/ppl"] == metrics["val/ppl"]
    # the registry teacher was reused, never retrained
    assert len(list((root / "outputs" / "teachers").glob("*/registry.json"))) == 1
    seen = dict(Capture.seen)
    seen["module"].eval()
    return {**seen, "metrics": metrics}


def kd_value(module, batch, teacher_output=None):
    """The unweighted KD term on `batch`, against the module's teachers or `teacher_output`."""
    with torch.no_grad():
        out = module(batch)
        ctx = module.loss_context(out, batch, 0.0)
        teacher = teacher_output or ctx.teacher
        return teacher.kd_loss(out.logits, ctx.temperature, batch.tgt_mask), out, ctx


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["hidden", "attention", "combined"])
def test_distill_preset_runs_end_to_end(registry, tmp_path, preset):
    seen = run_preset(registry, tmp_path, [f"distill={preset}", "trainer.log_every_n_steps=1"])
    logged = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    expected = {"hidden": ["train/hidden"], "attention": ["train/attention"]}
    expected["combined"] = expected["hidden"] + expected["attention"]
    for name in expected[preset]:
        assert name in logged, (name, logged)
        assert name.split("/")[1] in seen["module"].objective.terms


@pytest.mark.slow
def test_seqkd_trains_on_the_teachers_decodes(registry, tmp_path):
    _, ckpt = registry
    seen = run_preset(registry, tmp_path, ["distill=seqkd"])
    batch, teacher = seen["batch"], CheckpointTeacher(ckpt)
    assert seen["module"].objective.weights(0.0)["kd"] == 0.0  # alpha 0: the decodes teach
    eos, pad = seen["module"].hparams.eos_id, seen["module"].hparams.pad_id
    hyps = teacher.generate(batch.src, batch.src_mask).tolist()  # greedy, as configured
    targets = []
    for hyp, tgt, mask in zip(hyps, batch.tgt_out, batch.tgt_mask, strict=True):
        hyp = [t for t in (hyp[: hyp.index(eos)] if eos in hyp else hyp) if t != pad]
        target = tgt[mask].tolist()[:-1]  # without the EOS the collate appends
        assert target and target == hyp[: len(target)], (target, hyp)
        targets.append(tuple(target))
    assert len(set(targets)) > 1  # decodes of different inputs, not one constant


@pytest.mark.slow
def test_extra_teachers_mix_two_teachers_with_normalised_weights(registry, tmp_path):
    _, ckpt = registry
    other = tmp_path / "other.ckpt"  # a second, different teacher: the first one perturbed
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    torch.manual_seed(0)
    for v in state["state_dict"].values():
        if v.is_floating_point():
            v.add_(0.5 * torch.randn_like(v))
    torch.save(state, other)
    seen = run_preset(registry, tmp_path, [f"extra_teachers=[{{ckpt: {other}, weight: 0.5}}]"])
    module, batch = seen["module"], seen["batch"]
    assert module.hparams.teacher_ids == [file_sha256(ckpt), file_sha256(other)]
    assert module.teacher_weights == [1.0, 0.5]
    mixed, out, ctx = kd_value(module, batch)
    t = ctx.temperature
    probs = [torch.softmax(tc.outputs(batch).logits[0] / t, -1) for tc in module.teachers]
    target = (1.0 * probs[0] + 0.5 * probs[1]) / 1.5  # weights normalised to sum to 1
    torch.testing.assert_close(mixed, kd_loss_from_probs(out.logits, target, t, batch.tgt_mask))
    single, _, _ = kd_value(module, batch, module.teachers[0].outputs(batch))
    assert abs(float(mixed) - float(single)) > 1e-3  # the second teacher moved the target


@pytest.mark.slow
def test_init_from_teacher_starts_from_the_teachers_weights(registry, tmp_path):
    _, ckpt = registry
    # the teacher's hidden size (48) and a narrower embedding (16 vs 24): most tensors match in
    # shape and are copied; the embedding is projected on the teacher's principal directions
    seen = run_preset(
        registry, tmp_path, ["student.init_from_teacher=true", "model.hidden_size=48"]
    )
    teacher = dict(CheckpointTeacher(ckpt).model.named_parameters())
    copied, state = seen["module"].copied, seen["state"]
    plain = [c for c in copied if "projected" not in c]
    assert len(plain) >= 10 and "decoder.gru.weight_hh_l0" in plain
    for name in plain:  # at step 0, before any update
        torch.testing.assert_close(state[name], teacher[name], msg=name)
    assert "embedding.weight (projected 24->16)" in copied
    u, s, _ = torch.linalg.svd(teacher["embedding.weight"], full_matrices=False)
    torch.testing.assert_close(state["embedding.weight"], u[:, :16] * s[:16])
    shaped = [n for n in state if n in teacher and teacher[n].shape != state[n].shape]
    assert shaped and not set(shaped) & set(plain)  # what cannot match keeps its own init


@pytest.mark.slow
def test_cached_teacher_outputs_are_the_teachers_top_k(registry, tmp_path):
    root, ckpt = registry
    overrides = ["distill.teacher_outputs=cached", "distill.topk=16", "distill.tail_samples=4"]
    overrides += ["distill/codec=exact"]  # fp16 values: compared with the teacher below
    seen = run_preset(registry, tmp_path, overrides)
    module, batch = seen["module"], seen["batch"]
    (cached,) = module.teachers
    assert isinstance(cached, CachedTeacher)
    # written under the cache dir, keyed by a hash of its spec (teacher, k, draws, softening temperature)
    path = cached.cache.path
    assert path.parent == Path(root / "outputs" / "cache" / "teacher_outputs")
    spec = json.loads((path / "artefact.json").read_text())["spec"]
    assert path.name == fingerprint(spec) and spec["teacher"] == file_sha256(ckpt)
    assert (spec["k"], spec["tail_samples"], spec["softening_temperature"]) == (16, 4, 1.0)
    assert (path / "values.npy").is_file() and (path / "ids.npy").is_file()
    # its top-k is the online teacher's, at the same log-probabilities (fp16)
    online = CheckpointTeacher(ckpt).outputs(batch)
    log_probs = torch.log_softmax(online.logits[0], -1)
    out = cached.outputs(batch)
    m = batch.tgt_mask
    top = log_probs.topk(16, -1)
    torch.testing.assert_close(out.values[..., :16][m].float(), top.values[m], atol=2e-3, rtol=0)
    # its KD gradient is the online one's on those tokens (an unbiased estimate elsewhere)
    logits = kd_value(module, batch)[1].logits.detach()

    def grad(teacher_output):
        z = logits.clone().requires_grad_()
        teacher_output.kd_loss(z, 1.0, m).backward()
        return z.grad

    g_cached, g_online = grad(out), grad(online)
    at_top = top.indices[m]
    torch.testing.assert_close(
        g_cached[m].gather(-1, at_top), g_online[m].gather(-1, at_top), atol=1e-5, rtol=1e-2
    )
    # a distribution (sums to 1) whose top-k keeps its teacher probabilities: the tail draws
    # carry the rest of the mass, which a renormalised top-k would have spread over the top
    torch.testing.assert_close(g_cached[m].sum(-1), g_online[m].sum(-1), atol=1e-6, rtol=0)
    top_mass = top.values[m].exp().sum(-1)
    assert float(top_mass.max()) < 0.99  # so a top-k alone would have dropped some
