"""The configuration reference is generated from the schemas and the YAML: every group and
every option appears, with the types and ranges the schemas declare."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "src" / "distillab" / "conf"


def test_the_generated_reference_lists_every_group_option_and_a_range():
    page = runpy.run_path(str(ROOT / "docs" / "gen_config_reference.py"), run_name="test")
    text = page["render"]()
    groups = {str(p.parent.relative_to(CONF)) for p in CONF.rglob("*.yaml")} - {"."}
    assert {"data", "distill", "teacher", "compress", "hydra/launcher"} <= groups
    for group in groups:
        assert f"## `{group}`" in text, group
        for option in (CONF / group).glob("*.yaml"):
            assert f"### `{group}={option.stem}`" in text, (group, option.stem)
    assert "| `distill.objective.temperature` | float | `1.0` | (0.0, 100.0] |" in text
    assert "| `data.tokenizer` | choice | `bpe` | one of bpe, wordpiece, pretrained |" in text
    assert "| `teacher.train.model.emb_dim` | int |" in text  # the teacher's own block
