"""Past runs: list them with their state, compare two, and say what changed since one was made."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from zhouyi.render import TRAIN_DIR
from zhouyi.runs import MANIFEST, is_trained, package_versions, read_manifest, sha256_file

COMPARED = ("spec.resolved.yaml", "train.yaml", "predict_base.yaml", "predict.yaml", "infer.yaml", "export.yaml")


def summary(run_dir: Path) -> dict:
    """One run's state from its files: status, steps, last loss, minutes, adapter and merged weights."""
    manifest = read_manifest(run_dir)
    train = run_dir / TRAIN_DIR
    log = train / "trainer_log.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    last = entries[-1] if entries else {}
    losses = [e["loss"] for e in entries if "loss" in e]
    if is_trained(run_dir):
        status = "finished"
    elif entries or any(train.glob("checkpoint-*")):
        status = "stopped"
    else:
        status = "not started"
    merged = run_dir / manifest["spec"]["export"]["export_dir"]
    return {
        "run": run_dir.name,
        "status": status,
        "steps": f"{last['current_steps']}/{last['total_steps']}" if last else "-",
        "loss": round(losses[-1], 4) if losses else None,
        "minutes": round(_seconds(last.get("elapsed_time", "")) / 60, 1) if last else None,
        "adapter": (train / "adapter_model.safetensors").is_file(),
        "merged": merged.is_dir() and any(merged.glob("*.safetensors")),
        "created": manifest.get("created"),
    }


def _seconds(hms: str) -> float:
    """trainer_log's elapsed_time ('0:01:02' or '1 day, 2:03:04') in seconds."""
    days, _, clock = hms.rpartition(", ")
    parts = [float(p) for p in clock.split(":")] if clock else [0.0]
    seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    return seconds + (int(days.split()[0]) * 86400 if days else 0)


def list_runs(runs_dir: Path) -> list[dict]:
    runs = sorted((p for p in runs_dir.iterdir() if (p / MANIFEST).is_file()), key=lambda p: p.stat().st_mtime) \
        if runs_dir.is_dir() else []
    return [summary(p) for p in runs]


def diff_runs(a: Path, b: Path) -> str:
    """Unified diffs of the resolved specs and the rendered configs that differ; empty when none do."""
    read_manifest(a), read_manifest(b)
    out = []
    for name in COMPARED:
        left, right = _lines(a / name), _lines(b / name)
        if left != right:
            out += difflib.unified_diff(left, right, f"{a.name}/{name}", f"{b.name}/{name}", lineterm="")
    return "\n".join(out)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def drift(run_dir: Path) -> list[str]:
    """What differs now from when the run was made: data file contents and package versions."""
    manifest = read_manifest(run_dir)
    notes = []
    for path, digest in manifest.get("data", {}).items():
        now = sha256_file(Path(path)) if Path(path).is_file() else None
        if now != digest:
            notes.append(f"data {path} {'is gone' if now is None else 'changed since the run'}")
    current = package_versions()
    for name, version in manifest.get("versions", {}).items():
        if name != "zhouyi" and current.get(name) != version:
            notes.append(f"{name} {version} then, {current.get(name)} now")
    return notes
