"""`distillab-eval`: the second Hydra app (conf/eval.yaml). Evaluates a checkpoint of a
distillab run and, with `compress=prune|quantize|hybrid`, compresses and exports it, writing
the same files as a training run. Config errors and an unusable checkpoint (missing, empty,
truncated, damaged, not a distillab checkpoint) exit 2 with one line, before any work."""

from __future__ import annotations

import os
import sys
import time
import traceback

import hydra
from hydra.utils import get_method
from omegaconf import DictConfig

from distillab.train import CONF_DIR, first_distillab_error
from distillab.utils import console


@hydra.main(config_path=CONF_DIR, config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console.setup()
    start = time.time()
    try:
        from distillab.checkpoint import check_checkpoint
        from distillab.compose import compose_eval
        from distillab.validate import validate_eval

        validate_eval(cfg)
        check_checkpoint(cfg.ckpt)  # a damaged or foreign file: one line, before the data
        get_method(cfg.job)(compose_eval(cfg))
    except Exception as e:
        ours = first_distillab_error(e)
        if ours is None:
            raise
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        console.log.error(f"distillab: error: {ours}")
        sys.exit(2)
    console.log.info(f"done in {time.time() - start:.0f}s: {cfg.paths.output_dir}")


def cli() -> None:
    main()


if __name__ == "__main__":
    cli()
