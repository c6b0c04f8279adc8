"""dataset_info.json: merge zhouyi's entries in, keep everyone else's, write atomically under a lock (several zhouyi
processes may register at once), refuse surprises."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.files import atomic_write, locked


@dataclass
class MergeResult:
    path: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def describe(self) -> str:
        what = ", ".join(f"{k}: {', '.join(v)}" for k, v in
                         (("added", self.added), ("updated", self.updated), ("removed", self.removed),
                                          ("unchanged", self.unchanged)) if v)
        return f"registry {self.path}: {what or 'nothing to register'}"


def read_registry(path: Path) -> dict[str, dict]:
    """The registry at `path` ({} when absent). Malformed JSON is an error naming file and line."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_dir():
        raise UserError(f"{path} is a folder; LLaMA-Factory's dataset registry must be a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); fix it by hand, zhouyi will not overwrite it"
        ) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); fix or remove it") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UserError(f"{path}: expected a JSON object of dataset entries, like {{\"name\": {{\"file_name\": ...}}}}")
    return data


def merge_entries(path: Path, entries: dict[str, dict], force: bool = False, remove: dict[str, str] | None = None,
                  dry_run: bool = False) -> MergeResult:
    """Add or update `entries` in the registry at `path`; every other entry stays byte-for-byte the same.

    An existing entry of the same name pointing at another file is a conflict: refused unless `force`. `remove`
    ({name: file_name}) drops entries that still point at a file zhouyi removed. `dry_run` only checks.
    """
    path = Path(path)
    with locked(path.parent):
        current = read_registry(path)
        result = MergeResult(path)
        conflicts = []
        for name, entry in entries.items():
            old = current.get(name)
            if old is None:
                result.added.append(name)
            elif old == entry:
                result.unchanged.append(name)
            else:
                if old.get("file_name") != entry.get("file_name") and not force:
                    conflicts.append(f"'{name}' points at {old.get('file_name')!r}, the spec at "
                                     f"{entry.get('file_name')!r}")
                result.updated.append(name)
        result.removed = [name for name, file in (remove or {}).items()
                          if name not in entries and current.get(name, {}).get("file_name") == file]
        if conflicts:
            raise UserError(
                f"{path}: refusing to repoint existing entries: " + "; ".join(conflicts)
                + ". Rename the dataset (in the spec, or the output file), or pass --force to repoint."
            )
        if result.changed and not dry_run:
            merged = {**current, **{name: entries[name] for name in result.added + result.updated}}
            for name in result.removed:
                del merged[name]
            atomic_write(path, json.dumps(merged, ensure_ascii=False, indent=2) + "\n")
    return result
