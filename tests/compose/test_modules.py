"""The composition root builds each module's network and objective once and passes them
built: the module trains that objective (its learned parts included), its checkpoint stays
self-contained, and `distill.objective.temperature` reaches the loss context."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import distillab.compose.modules as modules
from distillab.checkpoint import load_model
from distillab.compose.rundir import seed
from distillab.losses.objective import Objective
from distillab.losses.weighting import Uncertainty
from distillab.modules.optim import param_groups
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.teachers import Teacher
from distillab.teachers.outputs import LogitsOutput
from tests.conftest import TINY, compose_cfg, started


class Wide(Teacher):
    """A teacher of the data's tokenizer, 48 wide, scoring every token alike."""

    identity = "e" * 64
    hidden_size = 48

    def __init__(self, vocab_hash: str, vocab: int) -> None:
        self._vocab_hash, self.vocab = vocab_hash, vocab

    @property
    def vocab_hash(self) -> str:
        return self._vocab_hash

    def outputs(self, batch):
        logits = torch.zeros(*batch.tgt_in.shape, self.vocab)
        return LogitsOutput(enc_states=None, logits=[logits], weights=[1.0])


OVERRIDES = ["experiment=distill", "distill=hidden", "weighting=uncertainty", *TINY]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = compose_cfg(OVERRIDES, tmp_path_factory.mktemp("modules"))
    cfg.distill.objective.temperature, cfg.distill.objective.temperature_end = 3.0, 1.5
    r = started(cfg)
    return r, Wide(r.data.vocab_hash, len(r.data.tokenizer))


def test_the_module_trains_the_objective_compose_built(run, monkeypatch, tmp_path):
    r, teacher = run
    built, build = [], modules.distill_objective

    def spy(*args, **kwargs) -> Objective:
        built.append(build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(modules, "distill_objective", spy)
    module = modules.distillation_module(r.cfg, r.data, r.heads, [teacher])
    monkeypatch.undo()
    (objective,) = built
    assert module.objective is objective
    # the config stays recorded as plain data, for the record
    recorded = OmegaConf.to_container(r.cfg.distill.objective, resolve=True)
    assert {k: module.hparams.objective_config[k] for k in recorded} == recorded
    # wired to the student's and the teacher's widths
    projection = objective.terms["hidden"].projection
    assert (projection.in_features, projection.out_features) == (module.model.hidden_size, 48)
    # learned parts are the module's: trained (in the optimiser's groups), checkpointed
    assert isinstance(objective.weighting, Uncertainty)
    state = module.state_dict()
    learned = {f"objective.weighting.log_vars.{n}" for n in ("ce", "kd", "hidden")}
    assert learned | {"objective.terms.hidden.projection.weight"} <= set(state)
    trained = {id(p) for g in param_groups(module, 0.01) for p in g["params"]}
    assert {id(p) for p in objective.parameters()} <= trained
    # a checkpoint of it holds only plain data and rebuilds its network without the module
    path = tmp_path / "student.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": dict(module.hparams)}, path)
    net = load_model(path)
    for name, w in module.model.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], w)
    # evaluation rebuilds a plain module with the gold objective from what it recorded (an
    # older checkpoint recorded the objective's config as `objective`: not rebuilt either)
    older = {**dict(module.hparams), "objective": module.hparams.objective_config}
    for hp in (dict(module.hparams), older):
        torch.save({"state_dict": state, "hyper_parameters": hp}, path)
        plain = Seq2SeqModule.from_checkpoint(str(path))
        assert set(plain.objective.terms) == {"ce"}
        torch.testing.assert_close(plain.model.embedding.weight, module.model.embedding.weight)


@pytest.mark.parametrize(("progress", "temperature"), [(0.0, 3.0), (0.5, 2.25), (1.0, 1.5)])
def test_the_configured_temperature_schedule_reaches_the_loss_context(run, progress, temperature):
    r, teacher = run
    module = modules.distillation_module(r.cfg, r.data, r.heads, [teacher]).eval()
    batch = next(iter(r.data.val_dataloader()))
    ctx = module.loss_context(module(batch), batch, progress)
    assert ctx.temperature == pytest.approx(temperature)


def test_the_student_starts_as_the_scratch_student_whatever_its_objective(run):
    """The network is built before the objective, whose projection draws from the same RNG:
    the distilled student's initialisation is the scratch student's."""
    r, teacher = run
    seed(r.cfg)
    scratch = modules.gold_module(r.cfg, r.data, r.heads)
    seed(r.cfg)
    student = modules.distillation_module(r.cfg, r.data, r.heads, [teacher])
    for name, w in scratch.model.state_dict().items():
        torch.testing.assert_close(student.model.state_dict()[name], w)


def test_the_gold_objective_built_here_is_the_one_a_checkpoint_rebuilds(run):
    r, _ = run
    cfg = r.cfg.copy()
    cfg.module.label_smoothing = 0.1
    module = modules.gold_module(cfg, r.data, r.heads)
    assert module.objective.terms["ce"].label_smoothing == 0.1
    assert isinstance(module.objective.weighting, Uncertainty)
    # evaluation from a checkpoint has only its hyperparameters: the same objective
    rebuilt = Seq2SeqModule(**dict(module.hparams))
    assert rebuilt.objective.terms["ce"].label_smoothing == 0.1
    assert set(rebuilt.state_dict()) == set(module.state_dict())
    assert rebuilt.objective.weights(0.0) == module.objective.weights(0.0) == {"ce": 1.0}
