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


DEMO_DATA = ("zhougong_demo.json", "zhougong_demo_eval.json")  # tiny-cpu's train and held-out splits


def lay_out_project(folder: Path, tiny_model: Path | None = None) -> Path:
    """A project folder like the repo's: data/ with the demo splits, and models/tiny-qwen2 when given."""
    (folder / "data").mkdir()
    for name in DEMO_DATA:
        shutil.copy(REPO / "data" / name, folder / "data")
    if tiny_model:
        (folder / "models").mkdir()
        (folder / "models" / "tiny-qwen2").symlink_to(tiny_model)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder with no runs yet."""
    return lay_out_project(tmp_path)


@pytest.fixture
def tiny_project(tmp_path: Path, tiny_model: Path) -> Path:
    return lay_out_project(tmp_path, tiny_model)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_model) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """tiny-cpu trained once for the whole session: (project, run dir, the train result). Tests that use it
    each write to their own part of the run (export: merged/, eval: eval/) and never retrain it."""
    project = lay_out_project(tmp_path_factory.mktemp("trained"), tiny_model)
    result = zhouyi("train", "tiny-cpu", cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (project / "runs").iterdir()
    return project, run, result


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
