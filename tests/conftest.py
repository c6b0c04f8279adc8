"""Shared fixtures: the tiny model (built once per session) and a throwaway project folder around it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "zgjm"


def zhouyi(*args: str, cwd: Path, stdin: str | None = None, timeout: int = 600, env: dict | None = None):
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "zhouyi", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from zhouyi.tiny import build_tiny_model, corpus_from_alpaca

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2"
    return build_tiny_model(out, corpus_from_alpaca(REPO / "data" / "zhougong_demo.json"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder laid out like the repo: data/ with the demo dataset, and no runs yet."""
    (tmp_path / "data").mkdir()
    shutil.copy(REPO / "data" / "zhougong_demo.json", tmp_path / "data")
    return tmp_path


@pytest.fixture
def tiny_project(project: Path, tiny_model: Path) -> Path:
    (project / "models").mkdir()
    (project / "models" / "tiny-qwen2").symlink_to(tiny_model)
    return project


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
