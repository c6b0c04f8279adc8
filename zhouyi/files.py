"""Files as zhouyi writes and reads them: atomic writes of any text, a content hash, and rows of JSON data."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


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


def write_json(path: Path, data) -> None:
    """`data` as indented UTF-8 JSON (Chinese kept readable), atomically."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BadLine:
    """A JSON Lines line that is not JSON, kept in its place so a reader can report it by row."""

    line: int


def json_rows(text: str) -> list:
    """The rows of a JSON list, or of JSON Lines (one object a line; a bad line becomes a `BadLine`).

    Raises ValueError, naming line and column, for a JSON list that does not parse or text that is neither.
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if stripped.startswith("{"):
        if "\n" in stripped.rstrip():
            try:
                json.loads(stripped)
                raise ValueError("expected a JSON list of rows, got one JSON object")
            except json.JSONDecodeError:
                pass  # not one object: JSON Lines
        rows: list = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    rows.append(BadLine(n))
        return rows
    raise ValueError("expected a JSON list of rows or JSON objects one per line")


def read_json_rows(path: Path) -> list:
    """Every row of a JSON or JSONL data file; ValueError naming the first line that is not JSON."""
    rows = json_rows(Path(path).read_text(encoding="utf-8-sig"))
    bad = next((row for row in rows if isinstance(row, BadLine)), None)
    if bad is not None:
        raise ValueError(f"line {bad.line}: not valid JSON")
    return rows
