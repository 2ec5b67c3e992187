"""What a run directory records about the machine: package versions, Python, the JAX device,
and the git commit of the source when it runs from a checkout."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE_DIRECTORY = Path(__file__).resolve().parents[1]  # .../metastep
GIT_TIMEOUT = 10  # seconds: a hung git must not hold up a run

PACKAGES = (
    "metastep", "jax", "jaxlib", "optax", "numpy", "pandas", "pyarrow", "matplotlib", "tqdm",
)


def package_versions() -> dict[str, str | None]:
    """Installed version of each package that shapes the results (None when absent)."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def device() -> dict[str, Any]:
    """The JAX device the computations ran on."""
    import jax

    first = jax.devices()[0]
    return {
        "platform": first.platform,
        "kind": first.device_kind,
        "count": jax.device_count(),
        "float64": bool(jax.config.jax_enable_x64),
    }


def _git(*arguments: str) -> str | None:
    """``git arguments`` run in the package's directory: its output, or None on any failure."""
    try:
        result = subprocess.run(["git", *arguments], cwd=PACKAGE_DIRECTORY, capture_output=True,
                                text=True, timeout=GIT_TIMEOUT)
    except (OSError, subprocess.SubprocessError):  # no git, no directory, too slow
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> dict[str, Any] | None:
    """``{"commit": hash, "dirty": bool}`` when metastep runs from a git checkout of its own
    source (``dirty``: tracked files differ from the commit); None otherwise (an installed
    package, no git), never an error."""
    top = _git("rev-parse", "--show-toplevel")
    # Only a checkout whose src/metastep is this package: not a repository that merely holds an
    # installed copy (a virtualenv inside some other project).
    if top is None or (Path(top) / "src" / "metastep").resolve() != PACKAGE_DIRECTORY.resolve():
        return None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return None
    return {"commit": commit, "dirty": bool(status)}


def environment() -> dict[str, Any]:
    """Python, the operating system, CPU count, package versions, the JAX device and, when run
    from a git checkout, the commit (``git``: see :func:`git_commit`)."""
    values = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "device": device(),
    }
    commit = git_commit()
    if commit is not None:
        values["git"] = commit
    return values
