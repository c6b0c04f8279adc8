"""Files as zhouyi writes and reads them: atomic writes, several files committed as one, a lock on a shared
folder, the ledger that proves which files zhouyi wrote, a content hash, and rows of JSON data."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.layout import DATASET_INFO, LEDGER, kept_by_zhouyi

Data = str | bytes | Iterable[str]  # what a file is written from: pieces of text for a file too large to build


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write `text` to `path` through a temp file in the same folder and a rename: never half-written. A symlink
    stays a symlink: its target is what gets replaced."""
    path = _real(path)
    tmp = _stage(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def commit(writes: Mapping[Path, Data], removes: tuple[Path, ...] = ()) -> None:
    """Write several files and remove others as one unit: everything is staged beside its target first, then
    renamed in one go with SIGINT/SIGTERM/SIGHUP held back, so a signal cannot leave half the set new. Each
    folder's ledger records what zhouyi wrote (and forgets what it removed). A file's data is its text or bytes, or
    an iterable of text pieces for a file too large to build in memory."""
    targets = {_real(path): data for path, data in writes.items()}
    staged: dict[Path, str] = {}
    try:
        for path, data in targets.items():
            staged[path] = _stage(path, data)
        digests = {path: sha256_file(Path(tmp)) for path, tmp in staged.items()}
        held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for path, tmp in staged.items():
                os.replace(tmp, path)
            for path in removes:
                Path(path).unlink(missing_ok=True)
            _update_ledgers(digests, removes)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)


def written_by_zhouyi(path: Path) -> bool:
    """True when `path` holds exactly what zhouyi last wrote there (its folder's ledger says so)."""
    path = _real(path)
    ledger = _read_ledger(path.parent)
    return path.is_file() and ledger.get(path.name) == sha256_file(path)


def refuse_foreign(paths, force: bool, what: str = "-o", registries: bool = False, force_flag: str | None = "--force"
                   ) -> None:
    """Refuse to overwrite files zhouyi did not write (or that were changed since) unless `force`, and, `force` or
    not, a file zhouyi keeps for itself (the registry, the ledger, a run's own files) or a link leading to one.
    `registries`: the verb writes registry fragments of its own (render), which may replace what it wrote before;
    `force_flag`: the verb's flag to overwrite anyway, None when it has none (then none is advised)."""
    for p in paths:
        if (kept := kept_by_zhouyi(Path(p))) and not (registries and Path(p).name == DATASET_INFO
                                                      and (not Path(p).exists() or written_by_zhouyi(Path(p)))):
            raise UserError(f"{p}: {kept}, which zhouyi keeps for itself; choose another {what}")
        if Path(p).is_dir():
            raise UserError(f"{p} is a folder; {what} must name a file")
    foreign = [str(p) for p in paths if Path(p).exists() and not written_by_zhouyi(Path(p))]
    if foreign and not force:
        raise UserError(f"{', '.join(foreign)}: already there, and not as zhouyi wrote it (another program's file, "
                        f"or changed since); choose another {what}"
                        + (f", or pass {force_flag} to overwrite" if force_flag else ", or move it away"))


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` across processes while a shared file in it (dataset_info.json) is read,
    changed and written. The lock is on the folder itself: no lock file is left behind. Reentrant in one process."""
    folder = Path(folder).resolve()
    if folder in _HELD:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD.add(folder)
        yield
    finally:
        _HELD.discard(folder)
        os.close(fd)


_HELD: set[Path] = set()


@contextlib.contextmanager
def sole_writers(folders, doing: str) -> Iterator[None]:
    """`sole_writer` on each of `folders` (a verb that writes into several runs)."""
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(sole_writer(folder, doing))
        yield


@contextlib.contextmanager
def sole_writer(folder: Path, doing: str) -> Iterator[None]:
    """Hold `folder` for this verb alone while it writes there: a second zhouyi writing into the same folder (two
    exports of one run) is refused at once, naming the process that holds it, instead of deleting its work. The lock
    is on the folder itself (nothing left behind) and dies with the process."""
    folder = Path(folder).resolve()
    if folder in _HELD or not folder.is_dir():  # not there: the verb's own check names what is wrong
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{folder} is being written by {_holder(fd)}; wait for it to finish (or stop it), "
                            f"then {doing} again") from None
        _HELD.add(folder)
        yield
    finally:
        _HELD.discard(folder)
        os.close(fd)


@contextlib.contextmanager
def sole_user(path: Path, doing: str) -> Iterator[None]:
    """Hold the file `path` (made if missing, never through a link) for this verb alone: a second zhouyi that would
    append to it at once (two rewrites of one output paying twice for each answer) is refused, naming the holder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{path} is in use by {_holder(fd)}; wait for it to finish (or stop it), then {doing} "
                            "again") from None
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """The process holding a flock on `fd`'s file, as `pid N (its command line)`, from /proc/locks."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and inode in fields:
                pid = fields[fields.index(inode) - 1]
                with contextlib.suppress(OSError):
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {pid} ({cmd.strip()})"
                return f"pid {pid}"
    return "another process"


def _real(path: Path) -> Path:
    """`path`, or the file a symlink at `path` points to."""
    path = Path(path)
    return path.resolve() if path.is_symlink() else path


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _stage(path: Path, data: Data) -> str:
    """`data` in a synced temp file beside `path`, with `path`'s permissions; returns the temp file's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for piece in (data,) if isinstance(data, str | bytes) else data:
                fh.write(_bytes(piece))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _read_ledger(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no ledger, or a damaged one: nothing there is provably ours
    return data if isinstance(data, dict) else {}


def _update_ledgers(written: dict[Path, str], removed) -> None:
    folders: dict[Path, dict[str, str | None]] = {}
    for path, digest in written.items():
        folders.setdefault(path.parent, {})[path.name] = digest
    for path in removed:
        path = Path(path)
        folders.setdefault(path.parent, {})[path.name] = None
    for folder, changes in folders.items():
        with locked(folder):
            ledger = _read_ledger(folder) | changes
            text = json.dumps({k: v for k, v in sorted(ledger.items()) if v}, indent=1) + "\n"
            os.replace(_stage(folder / LEDGER, text), folder / LEDGER)


def read_mapping(path: Path, mend: str, parse=json.loads, errors: tuple = (ValueError,)) -> dict:
    """A JSON (or, with `parse`, YAML) file that holds a mapping; {} when absent or empty. A damaged one is a
    UserError naming the file and how to mend it, never a traceback."""
    if not path.is_file():
        return {}
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (*errors, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: damaged ({str(exc).splitlines()[0]}); {mend}") from None
    if not isinstance(data, dict | None):
        raise UserError(f"{path}: damaged (not a mapping); {mend}")
    return data or {}


def write_json(path: Path, data) -> None:
    """`data` as indented UTF-8 JSON (Chinese kept readable), atomically."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file at `path` cannot be whole (too short for the tensors its header lists: cut short while
    copying or writing), or None. Reads the header only: no torch, no weights."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        length = int.from_bytes(fh.read(8), "little") if size >= 8 else None
        if length is None or 8 + length > size:
            return f"{size:,} bytes, too short for its own header"
        try:
            header = json.loads(fh.read(length))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "its header is not a safetensors header"
    if 8 + length + end != size:
        return f"{size:,} bytes where its header needs {8 + length + end:,} (cut short while copying or writing?)"
    return None


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
        except RecursionError:
            raise ValueError("JSON nested too deeply to be rows of data") from None
    if stripped.startswith("{"):
        if "\n" in stripped.rstrip():
            try:
                json.loads(stripped)
                raise ValueError("expected a JSON list of rows, got one JSON object")
            except json.JSONDecodeError:
                pass  # not one object: JSON Lines
            except RecursionError:
                raise ValueError("JSON nested too deeply to be rows of data") from None
        rows: list = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except (json.JSONDecodeError, RecursionError):
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
