"""Installed package versions, read from their metadata (nothing is imported): for manifests, drift warnings,
reports and `doctor`."""

from __future__ import annotations

from importlib import metadata

RECORDED = ("zhouyi", "llamafactory", "transformers", "torch", "peft", "datasets", "accelerate", "trl", "deepspeed")


def dist_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """The versions a run records in its manifest, and `rerun` compares against."""
    return {name: dist_version(name) for name in RECORDED}
