"""YAML and file I/O shared by every module: a loader that reads `1e-4` as a number, atomic writes."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` / `5e3` as floats, as LLaMA-Factory's OmegaConf loader does."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml_text(text: str):
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file in the same folder and a rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
