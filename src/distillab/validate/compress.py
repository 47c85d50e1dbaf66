"""The `compress` group (training and `distillab-eval`): keys, ranges, plug-in pruners and a
schedule that fits its phase."""

from __future__ import annotations

from typing import Any

from distillab.errors import ConfigError, check_choice, check_range
from distillab.validate.fields import check_fields, check_schema, is_a, string
from distillab.validate.schemas import COMPRESS, SCHEDULE
from distillab.validate.targets import check_target, import_target


def check_compress(compress: Any, trainer: dict) -> None:
    """conf/compress: known keys and ranges, the pruning method a plug-in, a schedule that
    fits its phase (training, or the fine-tuning steps), gradual pruning only by a method
    that masks in place."""
    check_schema(
        "compress", compress, COMPRESS, "compression (compress=none|prune|quantize|hybrid)"
    )
    pruners = compress["pruners"]
    check_choice("compress.mode", compress["mode"], tuple(pruners))
    for name, node in pruners.items():
        check_target(f"compress.pruners.{name}", node)
    check_fields(
        f"compress.pruners.{compress['mode']}",
        pruners[compress["mode"]],
        {"scope": string(("layer", "global"))},
    )
    schedule, finetune = compress["schedule"], compress["finetune_steps"]
    if schedule is not None:
        check_schema("compress.schedule", schedule, SCHEDULE, "the pruning schedule")
        check_range(
            "compress.schedule.end_step", schedule["end_step"], schedule["start_step"], None
        )
        budget, where = (
            (finetune, "compress.finetune_steps")
            if finetune > 0
            else (trainer.get("max_steps", -1), "trainer.max_steps")
        )
        if is_a(budget, int) and budget > 0 and schedule["end_step"] > budget:
            raise ConfigError(
                f"compress.schedule.end_step={schedule['end_step']} is past {where}={budget}: "
                "the schedule would not finish"
            )
    if compress["prune"] and (schedule is not None or finetune > 0):
        method = import_target(
            f"compress.pruners.{compress['mode']}._target_", pruners[compress["mode"]]["_target_"]
        )
        if not getattr(method, "gradual", False):
            raise ConfigError(
                f"compress.mode={compress['mode']} prunes in one step after training: "
                "set compress.schedule=null and compress.finetune_steps=0"
            )
