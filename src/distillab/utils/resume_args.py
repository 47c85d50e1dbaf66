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


def override_key(override: str) -> str:
    """`seed` of `seed=1,2`, `hydra/launcher` of `hydra/launcher=slurm`, `a.b` of `+a.b=1`."""
    return override.split("=", 1)[0].lstrip("+~")


def resume_sweep_args(argv: list[str]) -> list[str]:
    """`distillab-train -m resume_sweep=DIR [overrides]`: the command line of the sweep in DIR
    (its `multirun.yaml`: task and launcher/sweeper overrides), with `hydra.sweep.dir=DIR` and
    the given overrides replacing saved ones of the same key (a grown axis: `seed=1,2,3`).
    Without `resume_sweep=`, `argv` as it is."""
    import yaml  # noqa: PLC0415 - only for this form

    dirs = [a.split("=", 1)[1] for a in argv if a.startswith("resume_sweep=")]
    if not dirs:
        return argv
    saved_file = Path(dirs[-1]) / "multirun.yaml"
    try:
        saved = (yaml.safe_load(saved_file.read_text()) or {})["hydra"]["overrides"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise SystemExit(
            f"distillab: error: resume_sweep={dirs[-1]}: no readable {saved_file} there "
            "(a sweep directory that distillab-train -m wrote)"
        ) from None
    mine = {override_key(a) for a in argv if "=" in a and not a.startswith("-")}
    mine |= {"hydra.sweep.dir", "resume_sweep"}
    kept = [
        o for o in [*saved.get("hydra", []), *saved.get("task", [])] if override_key(o) not in mine
    ]
    at = max(i for i, a in enumerate(argv) if a.startswith("resume_sweep="))
    rest = [a for i, a in enumerate(argv) if i == at or not a.startswith("resume_sweep=")]
    at = rest.index(argv[at])
    return [*rest[:at], *kept, f"hydra.sweep.dir={dirs[-1]}", *rest[at + 1 :]]
