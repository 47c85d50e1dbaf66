"""`distillab-train`: the Hydra app. Composes conf/train.yaml and runs one training job."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from distillab.data import DialogueDataModule
from distillab.errors import DistillabError
from distillab.modules.callbacks import PlainProgress, TrainClock
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.utils import resolvers
from distillab.utils.io import atomic_write_json
from distillab.utils.run_info import save_run_info

resolvers.register()

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def build_datamodule(cfg: DictConfig) -> DialogueDataModule:
    dm = instantiate(cfg.data)
    dm.load()
    return dm


def build_module(cfg: DictConfig, dm: DialogueDataModule, **extra) -> Seq2SeqModule:
    """The module named by `cfg.module._target_`, wired to the data's vocabulary and labels."""
    module = instantiate(
        cfg.module,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        vocab_size=len(dm.tokenizer),
        pad_id=dm.pad_id,
        bos_id=dm.bos_id,
        eos_id=dm.eos_id,
        num_topics=len(dm.topics) if cfg.task.topic else 0,
        rating_head=bool(cfg.task.rating),
        data_fingerprint=dm.fingerprint,
        _recursive_=False,
        _convert_="all",
        **extra,
    )
    module.tokenizer = dm.tokenizer
    return module


def build_trainer(cfg: DictConfig, run_dir: Path, clock: TrainClock) -> pl.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks.append(clock)
    interactive = sys.stdout.isatty()
    if interactive:
        callbacks.append(pl.callbacks.RichProgressBar())
    else:
        callbacks.append(PlainProgress())
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
        enable_progress_bar=interactive,
    )


def fit_and_evaluate(
    cfg: DictConfig, dm: DialogueDataModule, module: Seq2SeqModule, run_dir: Path
) -> dict[str, float]:
    """Train, then evaluate the best checkpoint (or the final weights) on val and test."""
    clock = TrainClock()
    trainer = build_trainer(cfg, run_dir, clock)
    trainer.fit(module, datamodule=dm)
    ckpt_cb = trainer.checkpoint_callback
    ckpt_dir = run_dir / "checkpoints"
    if not (ckpt_dir / "last.ckpt").exists():
        trainer.save_checkpoint(ckpt_dir / "last.ckpt")
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    val = trainer.validate(module, datamodule=dm, ckpt_path=best, verbose=False)[0]
    test = trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)[0]
    metrics = {k: float(v) for k, v in {**val, **test}.items() if not k.endswith("/loss")}
    metrics.update(
        {
            "model/params": sum(p.numel() for p in module.model.parameters()),
            "trainer/global_step": trainer.global_step,
            "time/train_s": round(clock.train_s, 3),
            "throughput/train_tokens_per_s": round(clock.tokens_per_s, 1),
            "checkpoint": best or str(ckpt_dir / "last.ckpt"),
        }
    )
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def train(cfg: DictConfig) -> dict[str, float]:
    """One training job: data -> module -> fit -> metrics.json in the run directory."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    save_run_info(run_dir, cfg, dm.describe())
    dm.tokenizer.save_pretrained(str(run_dir / "tokenizer"))
    return fit_and_evaluate(cfg, dm, module, run_dir)


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.time()
    try:
        metrics = train(cfg)
    except Exception as e:  # Hydra wraps errors raised inside instantiate(); find ours
        cause = e
        while cause is not None and not isinstance(cause, DistillabError):
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"distillab: error: {cause}", file=sys.stderr)
        sys.exit(2)
    print(f"done in {time.time() - start:.0f}s: {cfg.paths.output_dir}/metrics.json")
    value = metrics.get(cfg.get("optimized_metric"))
    return float(value) if value is not None and math.isfinite(value) else None


if __name__ == "__main__":
    main()
