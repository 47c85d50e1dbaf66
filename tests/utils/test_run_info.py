"""Run info: the git commit is the checkout's own, or empty for an installed package."""

import subprocess
from pathlib import Path

from distillab.utils.run_info import git_commit, versions


def test_checkout_reports_its_commit():
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_commit() == head == versions()["git_commit"]


def test_installed_package_reports_no_commit(tmp_path):
    # site-packages/../python3.x: no pyproject.toml
    assert git_commit(tmp_path) == ""
    # a pyproject.toml but no repository
    (tmp_path / "pyproject.toml").write_text("")
    assert git_commit(tmp_path) == ""
    # a venv inside someone else's repository: that repository's commit is not ours
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "other"], check=True)
    inner = tmp_path / "venv" / "lib" / "python3.11"
    inner.mkdir(parents=True)
    (inner / "pyproject.toml").write_text("")
    assert git_commit(inner) == ""
