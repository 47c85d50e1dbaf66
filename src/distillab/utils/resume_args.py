"""The command-line side of `resume=RUN_DIR`, kept free of torch and Lightning: it runs before
Hydra has set up logging (Lightning, imported earlier, would add its own stderr handler)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def resume_overrides(argv: list[str]) -> list[str]:
    """Hydra overrides that make a `resume=RUN_DIR` invocation log into RUN_DIR, keeping the
    run's own `.hydra/` record untouched (the resuming call's goes to `.hydra/resume_<time>`)."""
    runs = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not runs or runs[-1] in ("", "null") or not Path(runs[-1]).is_dir():
        return []  # validation reports a bad value
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return [f"hydra.run.dir={runs[-1]}", f"hydra.output_subdir=.hydra/resume_{stamp}"]
