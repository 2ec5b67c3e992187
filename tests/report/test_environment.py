"""config.json's environment: the git commit when run from a checkout, never an error."""

import shutil
import subprocess
from pathlib import Path

import pytest

from metastep.report import environment as environment_module
from metastep.report.environment import environment, git_commit

REPOSITORY = Path(__file__).resolve().parents[2]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_a_checkout_records_its_commit_and_whether_it_is_dirty():
    package = environment_module.PACKAGE_DIRECTORY
    if not (REPOSITORY / ".git").exists() or not package.is_relative_to(REPOSITORY):
        pytest.skip("metastep is not imported from a git checkout here")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True,
                          text=True, check=True).stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout
    assert environment()["git"] == {"commit": head, "dirty": bool(status.strip())}


def test_without_git_there_is_no_commit_and_no_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git to be found
    assert git_commit() is None
    assert "git" not in environment()


@needs_git
@pytest.mark.parametrize("inside_a_repository", [False, True])
def test_an_installed_copy_has_no_commit(monkeypatch, tmp_path, inside_a_repository):
    """Installed (not in a checkout), or inside some other project's repository."""
    if inside_a_repository:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    package = tmp_path / "venv" / "site-packages" / "metastep"
    package.mkdir(parents=True)
    monkeypatch.setattr(environment_module, "PACKAGE_DIRECTORY", package)
    assert git_commit() is None
