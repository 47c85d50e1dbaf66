"""On-policy distillation, head distillation and task weighting, on tiny models."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from distillab.decoding import Sample
from distillab.losses.context import LossContext
from distillab.losses.objective import Objective, linear
from distillab.losses.weighting import DWA, Fixed, Uncertainty
from distillab.models import Seq2Seq
from distillab.modules.onpolicy import OnPolicy, sampled_batch
from distillab.teachers import CheckpointTeacher
from distillab.train import run_job
from tests.conftest import TINY, TINY_TEACHER, compose_cfg, make_batch, started, student_of


def test_sampled_batch_rebuilds_targets_without_gradient():
    torch.manual_seed(0)
    model = Seq2Seq(50, pad_id=0, emb_dim=8, hidden_size=8).train()
    src = torch.randint(3, 50, (4, 6))
    batch = make_batch(4, src=src, src_mask=src != 0)
    gold = batch.tgt_out
    out = sampled_batch(model, batch, Sample(seed=1), bos_id=1, eos_id=2, pad_id=0, max_len=7)
    assert model.training  # restored after sampling in eval mode
    tgt_out, tgt_in, mask = out.tgt_out, out.tgt_in, out.tgt_mask
    assert tgt_out.shape == tgt_in.shape == mask.shape and tgt_out.shape[1] <= 7
    assert (tgt_in[:, 0] == 1).all() and torch.equal(
        tgt_in[:, 1:][mask[:, 1:]], tgt_out[:, :-1][mask[:, 1:]]
    )
    assert not tgt_out.is_inference() and not tgt_out.requires_grad
    assert out.n_tokens == int(mask.sum()) and out.topic is batch.topic and out.src is src
    assert batch.tgt_out is gold and batch.n_tokens == 12  # the gold batch is left as it was
    # rows end at their first EOS: nothing but pad after it
    for row in tgt_out.tolist():
        if 2 in row:
            assert all(t == 0 for t in row[row.index(2) + 1 :])
    model(out.src, out.src_mask, out.tgt_in).logits.sum().backward()  # trainable
    # the coin decides: lmbda=1 trains on samples (not gold), lmbda=0 on the batch as it is
    module = SimpleNamespace(
        model=model, hparams=SimpleNamespace(bos_id=1, eos_id=2, pad_id=0, max_decode_len=7)
    )
    spec = {"_target_": "distillab.decoding.Sample", "seed": 1}
    sampled = OnPolicy(1.0, spec, seed=0)(module, batch)
    assert not sampled.gold and sampled.batch.tgt_out is not gold
    assert OnPolicy(0.0, spec, seed=0)(module, batch) == (batch, True)


def test_lmbda_coin_is_seeded_and_has_the_right_rate():
    spec = {"_target_": "distillab.decoding.Sample"}
    a = [OnPolicy(0.3, spec, seed=5).coin() for _ in range(1)]
    p1, p2 = OnPolicy(0.3, spec, seed=5), OnPolicy(0.3, spec, seed=5)
    draws = [p1.coin() for _ in range(2000)]
    assert draws == [p2.coin() for _ in range(2000)] and a[0] == draws[0]
    assert abs(np.mean(draws) - 0.3) < 0.04
    assert not any(OnPolicy(0.0, spec, seed=1).coin() for _ in range(100))
    assert all(OnPolicy(1.0, spec, seed=1).coin() for _ in range(100))


def test_lmbda_coin_state_travels_with_the_checkpoint():
    """A resumed on-policy run continues the coin's sequence instead of restarting it."""
    from distillab.modules.distill import DistillationModule
    from distillab.modules.finite import FiniteGuard

    spec = {"_target_": "distillab.decoding.Sample"}
    run = SimpleNamespace(
        onpolicy=OnPolicy(0.5, spec, seed=3), finite_guard=FiniteGuard(), global_step=7
    )
    _ = [run.onpolicy.coin() for _ in range(7)]
    ckpt: dict = {}
    DistillationModule.on_save_checkpoint(run, ckpt)
    after = [run.onpolicy.coin() for _ in range(50)]
    resumed = SimpleNamespace(onpolicy=OnPolicy(0.5, spec, seed=3))
    DistillationModule.on_load_checkpoint(resumed, ckpt)
    assert [resumed.onpolicy.coin() for _ in range(50)] == after
    fresh = OnPolicy(0.5, spec, seed=3)
    assert [fresh.coin() for _ in range(50)] != after


def values_ctx(values):
    class Term(torch.nn.Module):
        def __init__(self, v, needs_gold=False):
            super().__init__()
            self.v, self.needs_gold = v, needs_gold

        def forward(self, ctx):
            return self.v

    return {n: Term(v, n == "ce") for n, v in values.items()}


def test_objective_skips_gold_terms_on_student_samples():
    terms = values_ctx({"ce": torch.tensor(2.0), "kd": torch.tensor(3.0)})
    obj = Objective(terms, {"ce": linear(0.5), "kd": linear(0.5)})
    total, values, weights = obj(LossContext(None, None, 0, gold=False), 0.0)
    assert set(values) == {"kd"} and weights["ce"] == 0 and total.item() == pytest.approx(1.5)
    total, values, _ = obj(LossContext(None, None, 0), 0.0)
    assert total.item() == pytest.approx(2.5)


def test_uncertainty_weighting_learns_and_is_in_the_objective_parameters():
    terms = values_ctx({"ce": torch.tensor(4.0), "kd": torch.tensor(0.5)})
    obj = Objective(terms, {"ce": linear(1.0), "kd": linear(1.0)}, weighting=Uncertainty)
    names = {n for n, _ in obj.named_parameters()}
    assert names == {"weighting.log_vars.ce", "weighting.log_vars.kd"}
    opt = torch.optim.SGD(obj.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        total, _, weights = obj(LossContext(None, {}, 0), 0.0)
        total.backward()
        opt.step()
    # optimum exp(-s) = 1 / (w L): the smaller loss gets the larger weight
    assert weights["ce"] == pytest.approx(1 / 4.0, rel=0.05)
    assert weights["kd"] == pytest.approx(1 / 0.5, rel=0.05)


def test_dwa_weighs_up_the_term_that_stopped_falling():
    dwa = DWA(["a", "b"], period=2, temperature=1.0).train()
    base = {"a": 1.0, "b": 1.0}
    seq = [(4.0, 4.0), (4.0, 4.0), (2.0, 4.0), (2.0, 4.0)]  # a halves, b flat
    for a, b in seq:
        _, eff = dwa({"a": torch.tensor(a), "b": torch.tensor(b)}, base)
        assert eff == {"a": 1.0, "b": 1.0}  # before two full periods
    _, eff = dwa({"a": torch.tensor(2.0), "b": torch.tensor(4.0)}, base)
    want = 2 * np.exp([0.5, 1.0]) / np.exp([0.5, 1.0]).sum()
    assert [eff["a"], eff["b"]] == pytest.approx(list(want))
    assert eff["a"] + eff["b"] == pytest.approx(2.0)
    total, eff = Fixed()({"a": torch.tensor(2.0)}, {"a": 0.5})
    assert total.item() == 1.0 and eff == {"a": 0.5}


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """A tiny task=multi distillation run (teacher with heads, trained into the registry)."""
    root = tmp_path_factory.mktemp("multi")
    cfg = compose_cfg(["experiment=distill", "task=multi", *TINY, *TINY_TEACHER], root)
    metrics = run_job(cfg)
    (entry,) = (root / "outputs" / "teachers").glob("*/registry.json")
    ckpt = str(entry.parent / json.loads(entry.read_text())["checkpoint"])
    return {"root": root, "metrics": metrics, "ckpt": ckpt}


@pytest.mark.slow
def test_multi_task_distillation_has_head_terms(multi, tmp_path):
    assert "val/topic_acc" in multi["metrics"] and "val/rating_mae" in multi["metrics"]
    cfg = compose_cfg(["experiment=distill", "task=multi", *TINY, *TINY_TEACHER], tmp_path)
    cfg.distill.objective.topic_kd, cfg.distill.objective.rating_kd = 0.25, 2.0
    r = started(cfg)
    module = student_of(r, [CheckpointTeacher(multi["ckpt"])])
    module.eval()
    batch = next(iter(r.data.val_dataloader()))
    ctx = module.loss_context(module(batch), batch, 0.0)
    total, values, weights = module.objective(ctx, 0.0)
    assert set(values) == {"ce", "kd", "topic", "rating", "topic_kd", "rating_kd"}
    assert weights["topic_kd"] == 0.25 and weights["rating_kd"] == 2.0
    assert all(torch.isfinite(v) and v > 0 for v in values.values())
    teacher = CheckpointTeacher(multi["ckpt"]).outputs(batch)
    want = torch.nn.functional.mse_loss(ctx.student.rating, teacher.rating)
    torch.testing.assert_close(values["rating_kd"], want)


@pytest.mark.slow
def test_onpolicy_run_with_uncertainty_weighting_writes_metrics(multi, tmp_path):
    cfg = compose_cfg(
        [
            "experiment=distill",
            "distill=onpolicy",
            "distill.onpolicy.lmbda=0.5",
            "distill.objective.divergence=jsd",
            "task=multi",
            "weighting=uncertainty",
            "trainer.log_every_n_steps=1",
            *TINY,
            *TINY_TEACHER,
        ],
        tmp_path,
    )
    cfg.paths.output_root = str(multi["root"] / "outputs")  # the registered teacher
    metrics = run_job(cfg)
    assert np.isfinite(metrics["val/ppl"])
    logged = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()
    head = logged[0].split(",")
    assert {"train/on_policy", "weight/topic_kd", "weight/kd", "train/rating_kd"} <= set(head)
    col = head.index("train/on_policy")
    flags = {row.split(",")[col] for row in logged[1:]} - {""}
    assert flags == {"0.0", "1.0"}  # both kinds of batch at lmbda 0.5 over 6 steps


@pytest.mark.slow
def test_quickstart_multi_reports_heads_and_baselines(tmp_path):
    """The preset's cached teacher serves its heads (an encoder pass) for topic_kd/rating_kd;
    with the heads reading the whole conversation (task.conversation_bag), every model that
    has them (teacher, both students, the agreement pass) is given it."""
    cfg = compose_cfg(
        [
            "experiment=quickstart",
            "task=multi",
            "task.conversation_bag=true",
            *TINY,
            *TINY_TEACHER,
            "data.max_train_examples=100",
            "trainer.check_val_every_n_epoch=1",
        ],
        tmp_path,
    )
    run_job(cfg)
    comparison = json.loads((tmp_path / "run" / "comparison.json").read_text())
    roles = ("teacher", "student_scratch", "student_distilled", "baseline_chance")
    assert set(comparison) == {*roles, "baseline_majority"}
    for role in (*roles, "baseline_majority"):
        assert {"val/topic_acc", "val/topic_f1", "val/rating_mae"} <= set(comparison[role]), role
    assert comparison["baseline_chance"]["val/topic_acc"] == pytest.approx(1 / 35)  # chitchat
    table = (tmp_path / "run" / "comparison.md").read_text()
    assert "val topic acc" in table and "baseline_majority" in table


def test_term_values_are_logged_on_the_steps_the_logger_writes(tmp_path):
    """Per-term values and weights are logged only on the steps Lightning writes (each
    `self.log` costs a small model's step); every written row still has them."""
    cfg = compose_cfg(
        ["task=multi", *TINY, "trainer.max_steps=7", "trainer.log_every_n_steps=3"], tmp_path
    )
    run_job(cfg)
    with open(tmp_path / "run" / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    written = [r for r in rows if r.get("train/loss")]
    assert [int(r["step"]) for r in written] == [2, 5]
    terms = [k[len("weight/") :] for k in rows[0] if k.startswith("weight/")]
    assert {"ce", "topic", "rating"} <= set(terms)
    for r in written:  # the step's own values (a stale one from an earlier step would not sum)
        total = sum(float(r[f"weight/{t}"]) * float(r[f"train/{t}"]) for t in terms)
        assert total == pytest.approx(float(r["train/loss"]), rel=1e-5)
    assert not any(r.get("train/topic") for r in rows if not r.get("train/loss"))
