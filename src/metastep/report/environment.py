"""What a run directory records about the machine: package versions, Python, the JAX device."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

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


def environment() -> dict[str, Any]:
    """Python, the operating system, CPU count, package versions and the JAX device."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "device": device(),
    }
