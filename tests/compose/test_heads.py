"""Task heads follow the data's labels: `auto` switches an unlabelled head off with a message,
an explicit `true` without labels is a one-line error."""

from __future__ import annotations

import logging

import pytest

from distillab.compose.heads import task_heads
from distillab.errors import ConfigError
from tests.conftest import TINY, compose_cfg, started, synthetic_conversations, write_jsonl


def data_cfg(tmp_path, rows, *overrides):
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    cfg = compose_cfg(
        ["data=jsonl", f"data.path={path}", "task=multi", *TINY, *overrides], tmp_path
    )
    return cfg, started(cfg).data


@pytest.mark.slow
def test_auto_switches_off_heads_without_labels(tmp_path, caplog):
    rows = [{k: v for k, v in r.items() if k != "topic"} for r in synthetic_conversations(40)]
    cfg, dm = data_cfg(tmp_path, rows)
    with caplog.at_level(logging.INFO, logger="distillab"):
        heads = task_heads(cfg.task, dm, cfg.data.path)
    assert heads == (0, True)
    assert "no topic labels; the topic head is off" in caplog.text


@pytest.mark.slow
def test_labelled_data_keeps_both_heads(tmp_path):
    cfg, dm = data_cfg(tmp_path, synthetic_conversations(40))
    assert (
        task_heads(cfg.task, dm, cfg.data.path) == (len(dm.topics), True) and len(dm.topics) == 4
    )  # none + 3


@pytest.mark.slow
def test_explicit_head_without_labels_is_an_error(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "rating"} for r in synthetic_conversations(40)]
    cfg, dm = data_cfg(tmp_path, rows, "task.rating=true")
    with pytest.raises(ConfigError, match="task.rating=true but the data has no rating labels"):
        task_heads(cfg.task, dm, cfg.data.path)
