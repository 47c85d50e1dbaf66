"""Which task heads a model gets: `task.topic` / `task.rating` are true, false or `auto`
(task=multi): `auto` switches a head off, with a logged message, when the data has no such
labels (e.g. a jsonl file without topics or ratings); `true` without labels is an error."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from distillab.errors import ConfigError
from distillab.utils.console import log

AUTO = "auto"


def available(dm) -> dict[str, bool]:
    """Whether the training split has topic labels (beyond "none") and any rating."""
    train = dm.datasets["train"]
    ratings = train.split.rating[train.split.examples[train.rows, 0]]
    return {"topic": len(dm.topics) > 1, "rating": bool((~np.isnan(ratings)).any())}


def task_heads(task: DictConfig, dm, data_path: str | None = None) -> tuple[int, bool]:
    """(num_topics (0: no topic head), rating head?) for the `task` node and `dm`'s labels."""
    if not (task.topic or task.rating):
        return 0, False
    have = available(dm)
    on = {}
    for head in ("topic", "rating"):
        asked = task[head]
        if asked and not have[head]:
            if asked == AUTO:
                log.info(f"task: the data has no {head} labels; the {head} head is off")
            else:
                raise ConfigError(
                    f"task.{head}=true but the data has no {head} labels "
                    f"(data.path={data_path}); set task.{head}=false or auto"
                )
        on[head] = bool(asked) and have[head]
    return (len(dm.topics) if on["topic"] else 0), on["rating"]
