"""`distillab-train`: the Hydra app. Composes distillab/conf/train.yaml and runs `cfg.job`."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.utils import get_method
from omegaconf import DictConfig

from distillab.errors import DistillabError
from distillab.utils import console, resolvers

resolvers.register()

CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped inside the package


def run_job(cfg: DictConfig) -> dict[str, float]:
    """Run the job named by `cfg.job` (e.g. distillab.jobs.train.run) and return its metrics."""
    return get_method(cfg.job)(cfg)


def first_distillab_error(e: BaseException) -> DistillabError | None:
    """Hydra wraps errors raised inside instantiate(); find ours in the cause chain."""
    while e is not None and not isinstance(e, DistillabError):
        e = e.__cause__
    return e


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console.setup()  # Hydra has set up logging: console + <run_dir>/train.log
    start = time.time()
    try:
        metrics = run_job(cfg)
    except Exception as e:
        ours = first_distillab_error(e)
        if ours is None:
            raise
        console.log.error(f"distillab: error: {ours}")
        sys.exit(2)
    console.log.info(f"done in {time.time() - start:.0f}s: {cfg.paths.output_dir}")
    value = metrics.get(cfg.get("optimized_metric"))
    return float(value) if value is not None and math.isfinite(value) else None


if __name__ == "__main__":
    main()
