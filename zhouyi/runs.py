"""Run directories: one per run, never reused, holding the rendered files, the spec and a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.launch import Command, redact
from zhouyi.render import DATASET_INFO, TRAIN_DIR, RenderContext
from zhouyi.spec import JobSpec, spec_to_yaml
from zhouyi.yamlio import atomic_write

MANIFEST = "manifest.json"
SPEC_COPY = "spec.yaml"
PACKAGES = ("zhouyi", "llamafactory", "transformers", "torch", "peft", "datasets", "accelerate", "trl", "deepspeed")


def runs_dir(spec: JobSpec, base_dir: Path) -> Path:
    return base_dir / spec.output.runs_dir


def new_run_dir(spec: JobSpec, base_dir: Path) -> Path:
    """Create `<runs_dir>/<run_name>-<timestamp>`; a second run in the same second gets `-2`, `-3`, ..."""
    parent = runs_dir(spec, base_dir)
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path.resolve()
        except FileExistsError:
            continue
    raise UserError(f"could not create a new run directory under {parent}")


def write_files(run_dir: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        atomic_write(run_dir / name, text)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(spec: JobSpec, ctx: RenderContext) -> list[Path]:
    """The data files this spec reads: its registry and every registered file it names that exists."""
    dataset_dir = ctx.resolve(spec.data.dataset_dir)
    registry = dataset_dir / DATASET_INFO
    paths = [registry] if registry.exists() else []
    for entry in spec.data.datasets:
        if entry.file_name and (dataset_dir / entry.file_name).exists():
            paths.append(dataset_dir / entry.file_name)
    return paths


def dist_version(name: str) -> str | None:
    """An installed distribution's version from its metadata (nothing is imported), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    return {name: dist_version(name) for name in PACKAGES}


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def write_manifest(run_dir: Path, spec: JobSpec, spec_text: str, spec_source: str, ctx: RenderContext,
                   files: dict[str, str], command: Command) -> dict:
    """Record what this run was, before it is launched: spec, files, data hashes, versions, command."""
    manifest = {
        "run_dir": str(run_dir),
        "spec_source": spec_source,
        "spec": spec.model_dump(mode="json"),
        "rendered": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()},
        "data": {str(p): sha256_file(p) for p in data_files(spec, ctx)},
        "versions": package_versions(),
        "git_commit": git_commit(ctx.base_dir),
        "command": {"argv": command.argv, "env": redact(command.env), "cwd": command.cwd},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(run_dir / SPEC_COPY, spec_text)
    atomic_write(run_dir / "spec.resolved.yaml", spec_to_yaml(spec))
    atomic_write(run_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{run_dir} is not a zhouyi run: {MANIFEST} is missing (runs are made by `zhouyi train`)")
    return json.loads(path.read_text(encoding="utf-8"))


def latest_trained_run(spec: JobSpec, base_dir: Path) -> Path:
    """The newest run of this spec whose training finished (has an adapter or weights)."""
    parent = runs_dir(spec, base_dir)
    candidates = sorted(
        (p for p in parent.glob(f"{spec.run_name}-*") if (p / MANIFEST).is_file() and is_trained(p)),
        key=lambda p: p.stat().st_mtime,
    ) if parent.is_dir() else []
    if not candidates:
        raise UserError(
            f"no finished run of '{spec.run_name}' under {parent}; train first (zhouyi train) or pass --run DIR"
        )
    return candidates[-1]


def is_trained(run_dir: Path) -> bool:
    out = Path(run_dir) / TRAIN_DIR
    return (out / "adapter_config.json").is_file() or (out / "config.json").is_file()


def check_run(run_dir: Path) -> Path:
    """A --run argument: must be a run directory whose training finished."""
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir}: no such directory")
    read_manifest(run_dir)
    if not is_trained(run_dir):
        raise UserError(f"--run {run_dir}: training has not finished there ({TRAIN_DIR}/adapter_config.json missing)")
    return run_dir


def last_checkpoint(run_dir: Path) -> Path:
    """The newest `checkpoint-<step>` the trainer saved in a run that did not finish, for --resume."""
    run_dir = Path(run_dir).resolve()
    read_manifest(run_dir)
    if is_trained(run_dir):
        raise UserError(f"--resume {run_dir}: training finished there; nothing to resume (start a new run)")
    steps = sorted((int(p.name.split("-")[1]), p) for p in (run_dir / TRAIN_DIR).glob("checkpoint-*")
                   if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file())
    if not steps:
        raise UserError(f"--resume {run_dir}: no checkpoint was saved before it stopped; train again "
                        "(a lower train.save_steps saves more often)")
    return steps[-1][1]


def ensure_empty_target(path: Path, force: bool) -> None:
    """Refuse to write into a non-empty folder unless forced: never mix two exports' shards."""
    if path.exists() and any(path.iterdir()):
        if not force:
            raise UserError(f"{path} exists and is not empty; pass --force to replace it")
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
