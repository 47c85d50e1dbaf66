"""End to end through Hydra: composition, a tiny teacher and student, reproducibility, errors."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_method
from omegaconf import OmegaConf

from distillab.losses.terms import RatingL1
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.train import CONF_DIR
from distillab.train import run_job as train
from tests.conftest import TINY, compose_cfg, synthetic_conversations, write_jsonl

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}"])
    assert cfg.experiment_name == name
    assert cfg.model._target_ and cfg.data._target_
    assert callable(get_method(cfg.job))


def run_cli(args: list[str], tmp_path: Path, multirun: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "distillab.train", *(["-m"] if multirun else [])]
    cmd += [f"paths.output_root={tmp_path}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("experiment", ["teacher", "student"])
@pytest.mark.slow
def test_tiny_run_through_hydra_writes_metrics(tmp_path, experiment):
    proc = run_cli([f"experiment={experiment}", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics_file,) = tmp_path.glob("runs/*/*/metrics.json")
    run_dir = metrics_file.parent
    metrics = json.loads(metrics_file.read_text())
    for key in [
        "val/ppl",
        "val/token_acc",
        "val/bleu",
        "val/rougeL",
        "val/distinct1",
        "val/distinct2",
        "test/ppl",
        "test/bleu",
        "model/params",
        "trainer/global_step",
        "time/train_s",
        "throughput/train_tokens_per_s",
    ]:
        assert key in metrics, key
    assert 1.0 < metrics["val/ppl"] < 1e6 and metrics["trainer/global_step"] == 6
    for artefact in [
        "config.yaml",
        "versions.json",
        "data.json",
        "tokenizer/tokenizer.json",
        "checkpoints/last.ckpt",
        ".hydra/overrides.yaml",
    ]:
        assert (run_dir / artefact).exists(), artefact
    assert experiment in run_dir.name


def test_user_jsonl_multitask_run(tmp_path, tiny_overrides):
    path = write_jsonl(tmp_path / "mine.jsonl", synthetic_conversations(40))
    cfg = compose_cfg(
        [
            "experiment=student",
            "data=jsonl",
            f"data.path={path}",
            "task=multi",
            "task.rating_loss._target_=distillab.losses.terms.RatingL1",
            "task.conversation_bag=true",
            *tiny_overrides,
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert {"val/topic_acc", "val/topic_f1", "val/rating_mae", "test/topic_acc"} <= set(metrics)
    assert 0.0 <= metrics["val/topic_acc"] <= 1.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val/ppl"] == metrics["val/ppl"]
    # task=multi: the heads read the whole conversation; the rating term is the configured one
    module = Seq2SeqModule.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert module.model.conversation_bag
    assert isinstance(module.objective.terms["rating"], RatingL1)


def test_same_seed_same_metrics(tmp_path, tiny_overrides):
    runs = []
    for i in range(2):
        cfg = compose_cfg(["experiment=student", *tiny_overrides], tmp_path / str(i))
        m = train(cfg)
        runs.append(
            {k: v for k, v in m.items() if not k.startswith(("time/", "throughput/", "checkpoint"))}
        )
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_bad_config_fails_before_work_with_key_and_range(tmp_path):
    proc = run_cli(["experiment=student", "data.val_fraction=1.5"], tmp_path)
    assert proc.returncode == 2
    assert "data.val_fraction=1.5" in proc.stderr and "(0.0, 0.5]" in proc.stderr
    assert not list(tmp_path.glob("runs/*/*/checkpoints"))


@pytest.mark.slow
def test_bad_jsonl_line_fails_with_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ['{"turns": ["a", "b"]}', '{"turns": 3}'])
    proc = run_cli(["experiment=student", "data=jsonl", f"data.path={path}"], tmp_path)
    assert proc.returncode == 2
    assert f"{path}:2: 'turns' must be a list" in proc.stderr


@pytest.mark.slow
def test_parallel_sweep_with_joblib_shares_one_sweep_dir(tmp_path):
    args = [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "experiment=student",
        *TINY,
        "seed=1,2",
    ]
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = sorted(tmp_path.glob("multiruns/*/*/*/metrics.json"))
    assert len(found) == 2 and found[0].parents[1] == found[1].parents[1]
    overrides = {(p.parent / ".hydra" / "overrides.yaml").read_text() for p in found}
    assert any("seed=1" in o for o in overrides) and any("seed=2" in o for o in overrides)


@pytest.mark.slow
def test_submitit_launcher_runs_each_job_through_submitit(tmp_path):
    """`submitit_local` goes through the same submitit executor as `submitit_slurm`, minus the
    cluster: each job runs in its own submitit process and writes its own metrics."""
    args = ["hydra/launcher=submitit_local", "experiment=student", *TINY, "seed=1,2"]
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = sorted(tmp_path.glob("multiruns/*/*/*/metrics.json"))
    assert sorted(jobs_by(found[0].parents[1], "seed")) == ["1", "2"] and len(found) == 2
    assert len(list(found[0].parents[1].glob(".submitit/*/*_log.out"))) == 2


@pytest.mark.slow
def test_optuna_sweep_minimises_the_optimized_metric(tmp_path):
    """The Optuna sweeper gets each job's `optimized_metric` (val/ppl) back from train() and
    reports the best of them."""
    args = [
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.direction=minimize",
        "optimizer.lr=interval(0.001,0.01)",
        "experiment=student",
        *TINY,
    ]
    proc = run_cli(args, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = [json.loads(p.read_text()) for p in tmp_path.glob("multiruns/*/*/*/metrics.json")]
    assert len(metrics) == 3
    (results,) = tmp_path.glob("multiruns/*/*/optimization_results.yaml")
    best = OmegaConf.load(results)
    assert best["best_value"] == pytest.approx(min(m["val/ppl"] for m in metrics), rel=1e-6)
    assert 0.001 <= best["best_params"]["optimizer.lr"] <= 0.01


@pytest.mark.parametrize(
    ("argv", "multirun"),
    [
        ([], False),
        (["-m"], True),
        (["experiment=student", "--multirun", "seed=1,2"], True),
        (["-cn", "train", "-m"], True),  # an option's value is not a flag
        (["--cfg", "job", "-m"], True),
        (["-p", "-m"], False),  # -m is --package's value here
        (["x=-m"], False),  # an override's value
        (["-i", "-m"], True),  # --info takes an optional value
        (["--multi"], True),  # argparse's abbreviations, as Hydra's parser allows them
        (["--version", "-m"], False),  # Hydra prints its version and exits
    ],
)
def test_multirun_is_read_from_the_command_line_like_hydra(argv, multirun):
    from distillab.train import multirun_requested

    assert multirun_requested(argv) is multirun


def jobs_by(sweep: Path, key: str) -> dict[str, Path]:
    """A sweep's job directories by the value of one of their overrides."""
    out = {}
    for f in sweep.glob("*/.hydra/overrides.yaml"):
        (value,) = [
            o.split("=", 1)[1] for o in yaml.safe_load(f.read_text()) if o.startswith(key + "=")
        ]
        out[value] = f.parents[1]
    return out


@pytest.mark.slow
def test_a_sweep_run_again_into_its_own_directory_reuses_its_finished_jobs(tmp_path):
    """The same grid, grown in the middle of its axis and reordered, run into the same sweep
    directory: jobs are named by their overrides, so the finished ones keep their records (not
    re-run, not rewritten) and only the new point runs; the report marks the reused jobs."""
    sweep = tmp_path / "sweep"
    base = ["experiment=student", *TINY, f"hydra.sweep.dir={sweep}"]
    first = run_cli([*base, "seed=1,3"], tmp_path, multirun=True)
    assert first.returncode == 0, first.stderr[-3000:]
    dirs = jobs_by(sweep, "seed")
    before = {s: (d / "status.json").read_bytes() for s, d in dirs.items()}
    grown = run_cli([*base, "seed=3,2,1"], tmp_path, multirun=True)
    assert grown.returncode == 0, grown.stderr[-3000:]
    after = jobs_by(sweep, "seed")
    assert sorted(after) == ["1", "2", "3"] and {s: after[s] for s in dirs} == dirs
    assert {s: (d / "status.json").read_bytes() for s, d in dirs.items()} == before
    assert (grown.stdout + grown.stderr).count("finished this job already: reusing its result") == 2
    assert [json.loads((after[s] / "status.json").read_text())["state"] for s in "123"] == [
        "finished"
    ] * 3
    rows = {r["seed"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert {s: (r["status"], r["reused"]) for s, r in rows.items()} == {
        "1": ("finished", "yes"),
        "2": ("finished", "no"),
        "3": ("finished", "yes"),
    }
    assert "2 reused" in (sweep / "report.md").read_text()

    # a finished run of another config (as after a default changed) is neither reused nor
    # overwritten: the report lists it as stale and the sweep exits 1; once the config is
    # the run's again, it is reused
    saved = after["1"] / "config.yaml"
    original = saved.read_text()
    changed = OmegaConf.load(saved)
    changed.data.batch_size = 15
    OmegaConf.save(changed, saved)
    kept = {f: (after["1"] / f).read_bytes() for f in ("status.json", "metrics.json")}
    stale = run_cli([*base, "seed=1,2"], tmp_path, multirun=True)
    assert stale.returncode == 1, stale.stderr[-3000:]
    assert "data.batch_size: 15 -> 16" in stale.stdout + stale.stderr
    assert {f: (after["1"] / f).read_bytes() for f in kept} == kept
    rows = {r["seed"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert (rows["1"]["status"], rows["2"]["status"]) == ("stale", "finished")
    assert "another config" in (sweep / "report.md").read_text()
    saved.write_text(original)
    again = run_cli([*base, "seed=1"], tmp_path, multirun=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (after["1"] / "stale.json").exists()
