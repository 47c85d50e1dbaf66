"""Every config error surfaces before any work: one line naming the key, the value and what is
allowed; exit status 2 from the CLI; nothing tokenised, trained or written outside a fresh run
directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from distillab.errors import ConfigError
from distillab.train import CONF_DIR
from distillab.validate import check_teacher_outputs, validate
from tests.conftest import TINY, TINY_TEACHER, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
DISTILL_PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "distill").glob("*.yaml"))
DISTILL = ["experiment=distill"]
CACHED = ["experiment=distill", "distill.teacher_outputs=cached"]


def error_of(overrides: list[str], tmp_path: Path) -> str:
    cfg = compose_cfg(overrides, tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- good configs -------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_validates(name, tmp_path):
    validate(compose_cfg([f"experiment={name}"], tmp_path))


@pytest.mark.parametrize("name", DISTILL_PRESETS)
def test_every_distill_preset_validates(name, tmp_path):
    validate(compose_cfg(["experiment=distill", f"distill={name}"], tmp_path))


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=distill", *TINY, *TINY_TEACHER],  # what the distillation tests run
        ["logger=tensorboard", "task=multi", "scheduler=cosine", "trainer=gpu"],
        ["data.tokenizer=wordpiece", "data.vocab_size=100", "model.attention=additive"],
        ["model.bidirectional=false", "model.hidden_size=33", "trainer.val_check_interval=0.5"],
    ],
)
def test_other_good_configs_validate(overrides, tmp_path):
    validate(compose_cfg(overrides, tmp_path))


# ---- bad configs, in-process: (overrides, what the one-line message says) -----------------
BAD = {
    # data
    "data type": (["data.batch_size=abc"], "data.batch_size='abc' must be an integer"),
    "data batch": (["data.batch_size=0"], "data.batch_size=0 is out of range; allowed: [1, inf]"),
    "data fraction": (
        ["data.val_fraction=0.7"],
        "data.val_fraction=0.7 is out of range; allowed: (0.0, 0.5]",
    ),
    "data dropout": (
        ["data.token_dropout=1.0"],
        "data.token_dropout=1.0 is out of range; allowed: [0.0, 1.0)",
    ),
    "data vocab max": (["data.vocab_size=2000000"], "allowed: [100, 1000000]"),
    "data bpe vocab": (
        ["data.vocab_size=200"],
        "data.vocab_size=200 is too small for data.tokenizer=bpe: it needs at least 262",
    ),
    "data vocab": (
        ["data.tokenizer=wordpiece", "data.vocab_size=50"],
        "data.vocab_size=50 is too small for data.tokenizer=wordpiece: it needs at least 100",
    ),
    "pretrained tokenizer without a path": (
        ["data.tokenizer=pretrained"],
        "data.tokenizer=pretrained, data.tokenizer_path=None: a tokenizer directory goes with",
    ),
    "data tokenizer": (
        ["data.tokenizer=sentencepiece"],
        "data.tokenizer='sentencepiece' is not allowed; choose one of ['bpe', 'wordpiece', 'pretrained']",
    ),
    "data unknown key": (
        ["+data.batchsize=3"],
        "data.batchsize=3 is not a setting of distillab.data.DialogueDataModule; "
        "did you mean data.batch_size",
    ),
    "data bool": (["data.lowercase=maybe"], "data.lowercase='maybe' must be true or false"),
    "data words": (
        ["data.min_target_words=80"],
        "data.min_target_words=80 is out of range; allowed: [0, 64]",
    ),
    "data path missing": (["data=jsonl"], "data.path is required with data=jsonl"),
    "data path": (
        ["data.path=/nonexistent/x.jsonl"],
        "data.path=/nonexistent/x.jsonl: no such file",
    ),
    "data source target": (
        ["data.source._target_=distillab.data.nope_source"],
        "data.source._target_='distillab.data.nope_source' cannot be imported",
    ),
    # model
    "model dropout": (
        ["model.dropout=1.0"],
        "model.dropout=1.0 is out of range; allowed: [0.0, 1.0)",
    ),
    "model even": (["model.hidden_size=33"], "model.hidden_size=33 must be even"),
    "model layers": (["model.enc_layers=0"], "model.enc_layers=0 is out of range"),
    "model emb": (["model.emb_dim=0"], "model.emb_dim=0 is out of range"),
    "model attention": (
        ["model.attention=dot"],
        "model.attention='dot' is not allowed; choose one of "
        "['additive', 'graph', 'multihead', 'multiplicative']",
    ),
    "model attention heads divide": (
        ["model.attention=multihead", "+model.attention_heads=5"],
        "model.attention_heads=5 must divide the hidden size",
    ),
    "model attention heads range": (
        ["model.attention=multihead", "+model.attention_heads=0"],
        "model.attention_heads=0 is out of range",
    ),
    "model attention option": (
        ["model.attention=additive", "+model.attention_heads=4"],
        "model.attention_heads is not an option of attention='additive' (its options: none)",
    ),
    "model speaker wired": (["+model.self_id=4"], "model.self_id cannot be set here"),
    "model wired": (["+model.vocab_size=100"], "model.vocab_size cannot be set here"),
    "model target": (
        ["model._target_=distillab.models.Nope"],
        "model._target_='distillab.models.Nope' cannot be imported",
    ),
    # task, module, student
    "task weight": (["task.topic_weight=-1"], "task.topic_weight=-1 is out of range"),
    "task bool": (
        ["task.topic=3"],
        "task.topic=3 is not allowed; choose one of [True, False, 'auto']",
    ),
    "decoding beam": (["decoding=beam", "decoding.beam_size=0"], "decoding.beam_size=0 is out of"),
    "decoding top_p": (["decoding=sample", "decoding.top_p=1.5"], "decoding.top_p=1.5 is out of"),
    "decoding unknown": (["decoding=beam", "+decoding.beams=3"], "decoding.beams=3 is not a"),
    "module smoothing": (["module.label_smoothing=1.0"], "module.label_smoothing=1.0 is out of"),
    "module unknown": (["+module.beam=3"], "module.beam=3 is not a setting"),
    "student bool": (
        ["student.init_from_teacher=3"],
        "student.init_from_teacher=3 must be true or false",
    ),
    # optimizer, scheduler
    "lr zero": (["optimizer.lr=0"], "optimizer.lr=0 is out of range; allowed: (0.0, 10.0]"),
    "lr big": (["optimizer.lr=20"], "optimizer.lr=20 is out of range"),
    "weight decay": (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1 is out of"),
    "betas": (["optimizer.betas=[0.9,1.5]"], "optimizer.betas[1]=1.5 is out of range"),
    "optimizer unknown": (
        ["+optimizer.momentum=0.9"],
        "optimizer.momentum=0.9 is not a setting of torch.optim.AdamW",
    ),
    "scheduler name": (
        ["scheduler.name=exp"],
        "scheduler.name='exp' is not allowed; choose one of",
    ),
    "warmup": (["scheduler.warmup_steps=-5"], "scheduler.warmup_steps=-5 is out of range"),
    # trainer
    "max steps": (["trainer.max_steps=-2"], "trainer.max_steps=-2 is out of range"),
    "max epochs": (["trainer.max_epochs=-3"], "trainer.max_epochs=-3 is out of range"),
    "endless": (["trainer.max_epochs=-1"], "training would never stop"),
    "precision": (["trainer.precision=33"], "trainer.precision=33 must be one of"),
    "trainer unknown": (["+trainer.max_step=5"], "did you mean trainer.max_steps"),
    "trainer float": (["trainer.max_steps=1.5"], "trainer.max_steps=1.5 must be an integer"),
    "accelerator": (["trainer.accelerator=gpux"], "trainer.accelerator='gpux' is not allowed"),
    "trainer wired": (["+trainer.logger=false"], "trainer.logger cannot be set here"),
    # logger, callbacks, paths
    "logger type": (["logger.csv.name=3"], "logger.csv.name=3 must be a string or null"),
    "callback unknown": (
        ["+callbacks.model_checkpoint.save_topk=3"],
        "did you mean callbacks.model_checkpoint.save_top_k",
    ),
    "callback target": (
        ["callbacks.model_checkpoint._target_=pytorch_lightning.callbacks.Nope"],
        "callbacks.model_checkpoint._target_='pytorch_lightning.callbacks.Nope' cannot be",
    ),
    "paths unknown": (["+paths.outputs=x"], "paths.outputs='x' is not a setting of paths"),
    # distill
    "alpha": (DISTILL + ["distill.objective.alpha=1.5"], "distill.objective.alpha=1.5 is out"),
    "temperature": (
        DISTILL + ["distill.objective.temperature=0"],
        "distill.objective.temperature=0 is out of range; allowed: (0.0, 100.0]",
    ),
    "alpha type": (["distill.objective.alpha=abc"], "distill.objective.alpha='abc' must be"),
    "teacher outputs": (
        ["distill.teacher_outputs=cache"],
        "distill.teacher_outputs='cache' is not allowed; choose one of ['online', 'cached']",
    ),
    "topk": (["distill.topk=0"], "distill.topk=0 is out of range"),
    "tail": (["distill.tail_samples=-1"], "distill.tail_samples=-1 is out of range"),
    "topk vocab": (CACHED + ["distill.topk=9000"], "distill.topk=9000 exceeds data.vocab_size"),
    "gold fraction": (
        ["distill.seqkd.gold_fraction=1.5"],
        "distill.seqkd.gold_fraction=1.5 is out of range",
    ),
    "seqkd beam": (
        ["decoding@distill.seqkd.decoding=beam", "distill.seqkd.decoding.beam_size=0"],
        "distill.seqkd.decoding.beam_size=0 is out of range",
    ),
    "term weight": (
        ["distill=hidden", "distill.objective.terms.hidden.weight=-1"],
        "distill.objective.terms.hidden.weight=-1 is out of range",
    ),
    "term target": (
        ["+distill.objective.terms.foo={_target_:distillab.losses.terms.Nope,weight:1}"],
        "distill.objective.terms.foo._target_='distillab.losses.terms.Nope' cannot be imported",
    ),
    "term unknown": (
        ["distill=hidden", "+distill.objective.terms.hidden.teacher_hiden=3"],
        "did you mean distill.objective.terms.hidden.teacher_hidden",
    ),
    "term builtin": (
        ["+distill.objective.terms.kd={_target_:distillab.losses.terms.AttentionKL,weight:1}"],
        "distill.objective.terms.kd: 'kd' is a built-in term",
    ),
    "distill unknown": (["+distill.top_k=3"], "did you mean distill.topk"),
    # cached teacher outputs exclude what changes or needs more than them
    "cached augmentation": (CACHED + ["data.token_dropout=0.1"], "data augmentation"),
    "cached seqkd": (
        ["experiment=distill", "distill=seqkd", "distill.teacher_outputs=cached"],
        "distill.teacher_outputs=cached excludes: distill.seqkd.enabled=true",
    ),
    "cached terms": (
        ["experiment=distill", "distill=hidden", "distill.teacher_outputs=cached"],
        "extra loss terms (distill.objective.terms: hidden)",
    ),
    "cached extra teachers": (
        ["experiment=quickstart", "extra_teachers=[{ckpt:/nope.ckpt}]"],
        "extra_teachers: the cache holds one teacher",
    ),
    # teachers
    "teacher ckpt": (
        DISTILL + ["teacher.ckpt=/nope.ckpt"],
        "teacher.ckpt=/nope.ckpt: no such checkpoint file",
    ),
    "teacher weight": (["teacher.weight=-1"], "teacher.weight=-1 is out of range"),
    "teacher target": (
        ["teacher._target_=distillab.teachers.Nope"],
        "teacher._target_='distillab.teachers.Nope' cannot be imported",
    ),
    "teacher model": (
        ["experiment=quickstart", "teacher.train.model.dropout=1.2"],
        "teacher.train.model.dropout=1.2 is out of range",
    ),
    "teacher lr": (["teacher.train.optimizer.lr=0"], "teacher.train.optimizer.lr=0 is out"),
    "teacher scheduler": (
        ["teacher.train.scheduler.name=step"],
        "teacher.train.scheduler.name='step' is not allowed",
    ),
    "teacher module": (
        ["teacher.train.module.max_decode_len=0"],
        "teacher.train.module.max_decode_len=0 is out of range",
    ),
    "teacher budget": (
        ["teacher.train.trainer.max_epochs=-1"],
        "teacher.train.trainer.max_steps=-1 and teacher.train.trainer.max_epochs=-1",
    ),
    "teacher trainer unknown": (
        ["+teacher.train.trainer.max_step=3"],
        "did you mean teacher.train.trainer.max_steps",
    ),
    "teacher data": (
        ["+teacher.train.data.max_examples=10"],
        "teacher.train.data.max_examples=10 is not a setting of the teacher's data budget",
    ),
    "extra auto": (
        DISTILL + ["extra_teachers=[{ckpt:auto}]"],
        "extra_teachers[0].ckpt=auto is not allowed",
    ),
    "extra missing file": (
        DISTILL + ["extra_teachers=[{ckpt:/nope.ckpt,weight:0.5}]"],
        "extra_teachers[0].ckpt=/nope.ckpt: no such checkpoint file",
    ),
    "extra no ckpt": (["extra_teachers=[{weight:0.5}]"], "extra_teachers[0].ckpt is missing"),
    "extra unknown": (
        ["extra_teachers=[{ckpt:x,wieght:1}]"],
        "did you mean extra_teachers[0].weight",
    ),
    "extra weight": (["extra_teachers=[{ckpt:x,weight:-1}]"], "extra_teachers[0].weight=-1"),
    # top level
    "threads": (["threads=0"], "threads=0 is out of range; allowed: [1, inf]"),
    "seed": (["seed=-1"], "seed=-1 is out of range"),
    "top unknown": (["+seeds=3"], "seeds=3 is not a setting of distillab; did you mean seed?"),
    "job": (["job=distillab.jobs.nope.run"], "job='distillab.jobs.nope.run' cannot be imported"),
    "metric": (
        ["optimized_metric=3"],
        "optimized_metric=3 must be a metric name (e.g. val/ppl) or a list",
    ),
}


@pytest.mark.parametrize("overrides, message", list(BAD.values()), ids=list(BAD))
def test_bad_config_is_one_line_naming_key_and_value(overrides, message, tmp_path):
    assert message in error_of(overrides, tmp_path)
    assert not (tmp_path / "outputs").exists()  # found before the output root is touched


def test_output_root_must_be_creatable(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = compose_cfg([], tmp_path)
    cfg.paths.output_root = str(blocker / "outputs")
    with pytest.raises(ConfigError, match=f"paths.output_root={blocker}/outputs: cannot create"):
        validate(cfg)


def test_unresolvable_interpolation_names_its_key(tmp_path):
    assert "data.batch_size: cannot resolve" in error_of(["data.batch_size=${nope}"], tmp_path)


def test_existing_files_pass(tmp_path):
    ckpt = tmp_path / "t.ckpt"
    ckpt.write_bytes(b"")
    data = tmp_path / "d.jsonl"
    data.write_text("")
    cfg = compose_cfg(
        DISTILL + [f"teacher.ckpt={ckpt}", "data=jsonl", f"data.path={data}"], tmp_path
    )
    cfg.extra_teachers = [{"ckpt": str(ckpt), "weight": 0.5}]
    validate(cfg)


def test_teacher_outputs_combinations_only_for_distillation_jobs(tmp_path):
    overrides = ["experiment=student", "distill=seqkd", "distill.teacher_outputs=cached"]
    run = validate(compose_cfg(overrides, tmp_path))  # a student from scratch: no teacher
    with pytest.raises(ConfigError, match="distill.seqkd.enabled=true changes the targets"):
        check_teacher_outputs(run)


# ---- through the CLI: exit 2, the message, no traceback, nothing trained or tokenised ------
def run_cli(args: list[str], tmp_path: Path, env: dict | None = None):
    cmd = [sys.executable, "-m", "distillab.train", f"paths.output_root={tmp_path}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def assert_nothing_done(tmp_path: Path) -> None:
    assert not (tmp_path / "teachers").exists() and not (tmp_path / "cache").exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"runs"}
    for run_dir in tmp_path.glob("runs/*/*"):  # at most the fresh run directory, Hydra's files
        assert {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}, run_dir


@pytest.mark.slow  # a command-line run: Python and torch start-up dominate
def test_regression_bad_alpha_fails_before_the_teacher_is_trained(tmp_path):
    """Used to train and register the teacher (and tokenise the data) before the range error."""
    proc = run_cli(
        ["experiment=distill", *TINY, *TINY_TEACHER, "distill.objective.alpha=1.5"], tmp_path
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "distillab: error: distill.objective.alpha=1.5 is out of range" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_nothing_done(tmp_path)


@pytest.mark.slow  # command-line runs: Python and torch start-up dominate
@pytest.mark.parametrize(
    "args, message",
    [
        (["data.batch_size=abc"], "distillab: error: data.batch_size='abc' must be an integer"),
        (
            ["experiment=quickstart", "teacher.train.model.dropout=1.2"],
            "distillab: error: teacher.train.model.dropout=1.2 is out of range",
        ),
        # Hydra's own errors: its message, status 2 instead of 1
        (["data=nope"], "Could not find 'data/nope'"),
        (["data.batchsize=3"], "Could not override 'data.batchsize'"),
        (["data.batch_size=["], "no viable alternative at input '['"),
    ],
    ids=["type", "teacher-range", "hydra-group", "hydra-key", "hydra-syntax"],
)
def test_cli_config_errors_exit_2_without_traceback(args, message, tmp_path):
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert_nothing_done(tmp_path)


def test_cli_uncreatable_run_directory_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = run_cli([f"paths.output_root={blocker}/outputs"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("distillab: error: cannot create the run directory")
    assert str(blocker) in line


# ---- objectives (issue 10) ----------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        [*DISTILL, "distill.objective.divergence=reverse_kl"],
        [*DISTILL, "distill.objective.divergence=jsd", "distill.objective.jsd_beta=0"],
        [*DISTILL, "distill=onpolicy", "distill.onpolicy.sampling.top_p=0.9", "task=multi"],
        [*DISTILL, "weighting=uncertainty"],
        ["weighting=dwa", "weighting.period=10"],
    ],
)
def test_objective_configs_validate(overrides, tmp_path):
    validate(compose_cfg(overrides, tmp_path))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ([*DISTILL, "distill.objective.divergence=kl"], "distill.objective.divergence='kl'"),
        ([*DISTILL, "distill.objective.jsd_beta=1.5"], "distill.objective.jsd_beta=1.5"),
        ([*DISTILL, "distill.objective.topic_kd=-1"], "distill.objective.topic_kd=-1"),
        (
            [*DISTILL, "distill.objective.head_temperature=0"],
            "distill.objective.head_temperature=0",
        ),
        ([*DISTILL, "distill=onpolicy", "distill.onpolicy.lmbda=2"], "distill.onpolicy.lmbda=2"),
        ([*DISTILL, "+distill.onpolicy.coin=1"], "distill.onpolicy.coin=1 is not a setting"),
        (
            [*DISTILL, "distill=onpolicy", "distill.onpolicy.sampling.top_p=0"],
            "top_p",
        ),
        (["weighting=dwa", "weighting.period=0"], "weighting.period=0"),
        (["weighting=uncertainty", "+weighting.names=[a]"], "weighting.names cannot be set"),
        (["weighting=dwa", "+weighting.tempreature=1"], "did you mean weighting.temperature"),
        (
            [*CACHED, "distill.objective.divergence=tvd"],
            "divergence=tvd: the top-k + tail-draw cache has an estimator for forward_kl only",
        ),
        ([*CACHED, "distill=onpolicy"], "distill.onpolicy.enabled=true"),
    ],
)
def test_bad_objective_config_is_one_line(overrides, message, tmp_path):
    assert message in error_of(overrides, tmp_path)
