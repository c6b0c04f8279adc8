"""Finding and reading run folders (zhouyi.train makes them): the manifest and the recorded spec, the latest
finished run, the last checkpoint, checks that a run is whole and where it was made, what it logged, and the
library of the `runs` and `diff` verbs (list, diff, drift since a run was made)."""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.files import read_mapping, safetensors_problem, sha256_file
from zhouyi.layout import MADE_BY_ZHOUYI, MANIFEST, TRAIN_DIR, is_trained
from zhouyi.load import apply_sets, from_data
from zhouyi.packages import package_versions
from zhouyi.render import RenderContext
from zhouyi.spec import JobSpec


def render_context(spec: JobSpec | None, run_dir: Path, base_dir: Path) -> RenderContext:
    """Where a run's rendered paths point: the project folder, the run folder and, for a spec, its tokenized-data
    cache (zhouyi.tokcache) and the model snapshot `zhouyi download` recorded (zhouyi.download)."""
    if spec is None:
        return RenderContext(base_dir, run_dir)
    from zhouyi.download import recorded
    from zhouyi.tokcache import tokenized_dir

    return RenderContext(base_dir, run_dir, tokenized_dir(spec, base_dir), recorded(spec, base_dir))


def runs_dir(spec: JobSpec, base_dir: Path) -> Path:
    return base_dir / spec.output.runs_dir


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{run_dir} is not a zhouyi run: {MANIFEST} is missing (runs are made by `zhouyi train`)")
    mend = "this run cannot be read (train it again)"
    manifest = read_mapping(path, mend)
    if not isinstance(manifest.get("spec"), dict):
        raise UserError(f"{path}: damaged, it records no spec; {mend}")
    return manifest


AFTER_TRAINING = ("infer.", "export.gate.")  # what --set may change on a trained run: how it answers, the gate


def recorded_spec(run_dir: Path, sets: list[str] | tuple[str, ...] = ()) -> JobSpec:
    """The spec a run was made from, as its manifest recorded it; with `sets`, --set applied to the fields that can
    change after training (any other is refused: the run was trained with its recorded value)."""
    data = read_manifest(run_dir)["spec"]
    for item in sets:
        path = item.partition("=")[0].strip()
        if not path.startswith(AFTER_TRAINING) or path == "infer.infer_backend":
            raise UserError(f"--set {path}: {run_dir} uses the spec it was trained with; only infer.* and "
                            f"export.gate.* can change after training. To change {path}, train anew: zhouyi train "
                            f"{Path(run_dir) / layout.SPEC_COPY} --set {item}")
    apply_sets(data, sets)
    return from_data(data, str(run_dir) + (" with --set" if sets else ""))


def read_trainer_log(run_dir: Path, complete_only: bool = False) -> list[dict]:
    """The entries of the run's trainer_log.jsonl ([] before the first step). A line that is not JSON (a killed
    trainer's last line) is left out; `complete_only` also leaves out a last line still being written."""
    log = Path(run_dir) / TRAIN_DIR / layout.TRAINER_LOG
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    lines = text.splitlines()
    if complete_only and not text.endswith("\n"):
        lines = lines[:-1]
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def latest_trained_run(spec: JobSpec, base_dir: Path) -> Path:
    """The newest run of this spec whose training finished (has an adapter or weights): made by a spec of this
    run name (its manifest says so, so `tiny` never takes `tiny-cpu`'s runs) and still where it was made."""
    parent = runs_dir(spec, base_dir)
    candidates = sorted(
        (p for p in parent.glob(f"{spec.run_name}-*") if is_trained(p) and _run_name(p) == spec.run_name),
        key=lambda p: p.stat().st_mtime,
    ) if parent.is_dir() else []
    if not candidates:
        raise UserError(
            f"no finished run of '{spec.run_name}' under {parent}; train first (zhouyi train) or pass --run DIR"
        )
    return check_weights(check_in_place(candidates[-1], "the latest run"), "the latest run")


def _run_name(run_dir: Path) -> str | None:
    try:
        recorded = read_manifest(run_dir)["spec"]
    except UserError:
        return None
    output = recorded.get("output") or {}
    return output.get("run_name") or recorded.get("name")


def check_in_place(run_dir: Path, flag: str = "--run") -> Path:
    """Refuse a run that was copied or moved: its rendered files point into the folder it was made in, so
    LLaMA-Factory would read and write there (another run's files, or a folder that is gone)."""
    made = layout.moved_from(run_dir, read_manifest(run_dir).get("run_dir"))
    if made is not None:
        where = "which still exists, and would be written to" if made.exists() else "which is gone"
        raise UserError(f"{flag} {run_dir}: this run was made in {made} ({where}); its rendered files point "
                        "there, so zhouyi does not use it from here. Use the run where it was made (move it back), "
                        "or train again from its spec here: zhouyi train " + str(Path(run_dir) / layout.SPEC_COPY))
    return run_dir


def check_run(run_dir: Path, flag: str = "--run") -> Path:
    """A --run argument: must be a run directory whose training finished, where it was made."""
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise UserError(f"{flag} {run_dir}: no such directory")
    check_in_place(run_dir, flag)
    if not is_trained(run_dir):
        raise UserError(f"{flag} {run_dir}: training has not finished there ({TRAIN_DIR}/adapter_config.json "
                        "missing)")
    return check_weights(run_dir, flag)


def check_weights(run_dir: Path, flag: str = "--run") -> Path:
    """Refuse a run whose saved weights are damaged (a truncated adapter): named here, not a loader's traceback."""
    for path in sorted((Path(run_dir) / TRAIN_DIR).glob("*.safetensors")):
        if problem := safetensors_problem(path):
            raise UserError(f"{flag} {run_dir}: {path.name} is damaged ({problem}); copy it again from where it "
                            f"was trained, or train again (zhouyi train {Path(run_dir) / layout.SPEC_COPY})")
    return run_dir


def last_checkpoint(run_dir: Path) -> Path:
    """The newest `checkpoint-<step>` the trainer saved in a run that did not finish, for --resume."""
    run_dir = Path(run_dir).resolve()
    check_in_place(run_dir, "--resume")
    if is_trained(run_dir):
        raise UserError(f"--resume {run_dir}: training finished there; nothing to resume (start a new run)")
    steps = sorted((int(p.name.split("-")[1]), p) for p in (run_dir / TRAIN_DIR).glob(f"{layout.CHECKPOINT}*")
                   if p.name.split("-")[1].isdigit() and (p / layout.TRAINER_STATE).is_file())
    if not steps:
        raise UserError(f"--resume {run_dir}: no checkpoint was saved before it stopped; train again "
                        "(a lower train.save_steps saves more often)")
    return steps[-1][1]


def ensure_empty_target(path: Path, force: bool) -> None:
    """Make `path` an empty folder for an export. A non-empty one is replaced only with `force`, and only when
    zhouyi made it (its marker file is there): never mix two exports' shards, never delete a folder of the user's."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file; the export needs a folder there (change export.export_dir)")
    if path.exists() and any(path.iterdir()):
        if not (path / MADE_BY_ZHOUYI).is_file():
            raise UserError(f"{path} exists, is not empty and zhouyi did not make it; move it away or change "
                            "export.export_dir (--force replaces only folders zhouyi made)")
        if not force:
            raise UserError(f"{path} exists and is not empty; pass --force to replace it")
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    (path / MADE_BY_ZHOUYI).write_text("made by zhouyi export; `zhouyi export --force` may replace this folder\n")


# ---------------------------------------------------------------- past runs: list, diff, drift


def summary(run_dir: Path) -> dict:
    """One run's state from its files: status, steps, last loss, minutes, adapter and merged weights."""
    manifest = read_manifest(run_dir)
    train = run_dir / TRAIN_DIR
    entries = read_trainer_log(run_dir)
    last = entries[-1] if entries else {}
    losses = [e["loss"] for e in entries if "loss" in e]
    if is_trained(run_dir):
        status = "finished"
    elif entries or any(train.glob(f"{layout.CHECKPOINT}*")):
        status = "stopped"
    else:
        status = "not started"
    merged = layout.merged_dir(run_dir, manifest["spec"]["export"]["export_dir"])
    return {
        "run": run_dir.name,
        "status": status,
        "steps": f"{last.get('current_steps')}/{last.get('total_steps')}" if last else "-",
        "loss": round(losses[-1], 4) if losses else None,
        "minutes": round(_seconds(last.get("elapsed_time", "")) / 60, 1) if last else None,
        "adapter": (train / layout.ADAPTER_WEIGHTS).is_file(),
        "merged": layout.is_model(merged) and any(merged.glob("*.safetensors")),
        "created": manifest.get("created"),
    }


def _seconds(hms: str) -> float:
    """trainer_log's elapsed_time ('0:01:02' or '1 day, 2:03:04') in seconds."""
    days, _, clock = hms.rpartition(", ")
    parts = [float(p) for p in clock.split(":")] if clock else [0.0]
    seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    return seconds + (int(days.split()[0]) * 86400 if days else 0)


def list_runs(runs_dir: Path) -> list[dict]:
    """Every run's summary, oldest first; a run whose manifest is damaged is listed as such, not skipped."""
    runs = sorted((p for p in runs_dir.iterdir() if (p / MANIFEST).is_file()), key=lambda p: p.stat().st_mtime) \
        if runs_dir.is_dir() else []
    out = []
    for run in runs:
        try:
            out.append(summary(run))
        except UserError as exc:
            out.append({"run": run.name, "status": "damaged", "problem": str(exc)})
    return out


def diff_runs(a: Path, b: Path) -> str:
    """Unified diffs of the resolved specs and the rendered configs that differ; empty when none do."""
    read_manifest(a), read_manifest(b)
    out = []
    for name in layout.COMPARED:
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
