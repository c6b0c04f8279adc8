"""The one reader of a file the user names (rules files, saved templates, general prompts, a teacher's or judge's
endpoint file, prompt templates, a bench report to estimate from). Whatever is wrong with it is said one way: the
flag or field that named it, the file, what is wrong (does not exist, is a folder, cannot be read, is not UTF-8
text, is not JSON or YAML, is nested too deep, has the wrong shape) and how to mend it; exit 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi.errors import UserError


def problem(what: str, path: Path, wrong: str, mend: str) -> UserError:
    """The one wording: `what: path wrong; mend`."""
    return UserError(f"{what}: {path} {wrong}; {mend}")


def read_text(path: Path, what: str, mend: str) -> str:
    """The file's UTF-8 text."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise problem(what, path, "does not exist", mend) from None
    except IsADirectoryError:
        raise problem(what, path, "is a folder, not a file", mend) from None
    except UnicodeDecodeError as exc:
        raise problem(what, path, f"is not UTF-8 text (byte {exc.start})", mend) from None
    except OSError as exc:
        raise problem(what, path, f"cannot be read ({exc.strerror})", mend) from None


def read_json(path: Path, what: str, mend: str):
    """The file's JSON value."""
    text = read_text(path, what, mend)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise problem(what, path, f"is not JSON (line {exc.lineno}: {exc.msg})", mend) from None
    except RecursionError:
        raise problem(what, path, "is nested too deep to read", mend) from None


def read_yaml_node(path: Path, what: str, mend: str):
    """The file's YAML as composed nodes (with their line numbers), or None for an empty file."""
    import yaml

    text = read_text(path, what, mend)
    try:
        return yaml.compose(text)
    except RecursionError:
        raise problem(what, path, "is nested too deep to read", mend) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}: {getattr(exc, 'problem', exc)})" if mark else ""
        raise problem(what, path, f"is not YAML{where}", mend) from None


def wrong_shape(path: Path, what: str, shape: str, mend: str) -> UserError:
    """The file parsed but is not what `what` takes: `shape` says what was expected."""
    return problem(what, path, f"is not {shape}", mend)
