"""Every `distillab-*` command line of README.md and docs/getting-started.md runs, at tiny size
(the pages' own arguments, the tiny budget appended over them), and exits 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY, TINY_TEACHER

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md"]
# [project.scripts]: command -> "module:function"
SCRIPTS = dict(
    re.findall(r'^(distillab-[\w-]+) = "([\w.:]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
)
# a tiny run that still validates (so best.ckpt exists) and keeps the quickstart's students small
TRAIN_TINY = [
    *TINY,
    *TINY_TEACHER,
    "data.max_train_examples=100",
    "trainer.val_check_interval=2",
    "trainer.check_val_every_n_epoch=1",
    "teacher.train.trainer.check_val_every_n_epoch=1",
]


def commands(page: Path) -> list[list[str]]:
    """The `distillab-*` commands of the page's shell blocks, continuations joined, each part
    of a `&&` chain that starts with one (the set-up commands' last part)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in SCRIPTS:
                    found.append(words)
    return found


def all_commands() -> list[list[str]]:
    seen, out = set(), []
    for page in PAGES:
        for words in commands(page):
            if tuple(words) not in seen:
                seen.add(tuple(words))
                out.append(words)
    return out


def with_overrides(words: list[str], tiny: list[str]) -> list[str]:
    """The page's arguments with the tiny ones set over them (one value per key)."""
    keys = {t.split("=", 1)[0] for t in tiny}
    return [w for w in words[1:] if w.split("=", 1)[0] not in keys] + tiny


def test_the_pages_show_few_commands_of_known_clis():
    found = all_commands()
    assert ["distillab-train", "experiment=quickstart"] in found  # README's set-up command
    assert 2 <= len(found) <= 5, found  # each costs a tiny run in the test below
    assert all(w[0] in SCRIPTS for w in found)


@pytest.mark.slow
def test_every_command_of_the_readme_and_getting_started_runs_at_tiny_size(tmp_path):
    out = tmp_path / "outputs"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    run_dir = None
    for words in all_commands():
        module = SCRIPTS[words[0]].split(":")[0]
        args = [w.replace("RUN_DIR", str(run_dir)) for w in words]
        if words[0] == "distillab-train":
            args = with_overrides(args, [*TRAIN_TINY, f"paths.output_root={out}"])
        else:
            args = with_overrides(args, ["threads=1", f"paths.output_root={out}"])
        before = set(out.glob("runs/*/*"))
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, f"{' '.join(words)}\n{proc.stderr[-3000:]}"
        (new,) = set(out.glob("runs/*/*")) - before
        assert (new / "metrics.json").is_file(), " ".join(words)
        if words[0] == "distillab-train":
            run_dir = new
