"""The CLI and spec references in docs/reference/, generated from the parser and the Pydantic models so they cannot
drift from the code (`make docs` writes them; tests/test_docs.py fails when the committed files differ)."""

from __future__ import annotations

import argparse
import os
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

DOCS = Path("docs") / "reference"
WIDTH = "100"  # argparse wraps help to $COLUMNS: fixed, so the file is the same everywhere


def cli_reference() -> str:
    from zhouyi.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = build_parser()
        out = ["# CLI reference", "", "Generated from zhouyi's parser by `make docs`; do not edit.", "",
               "```", parser.format_help().rstrip(), "```", ""]
        out += _verbs(parser, "zhouyi")
    finally:
        os.environ.pop("COLUMNS") if saved is None else os.environ.__setitem__("COLUMNS", saved)
    return "\n".join(out)


def _verbs(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    from zhouyi.cli import _subcommands

    subs = _subcommands(parser)
    out: list[str] = []
    for name, verb in (subs.choices.items() if subs else ()):
        out += [f"## {prefix} {name}", "", "```", verb.format_help().rstrip(), "```", ""]
        out += _verbs(verb, f"{prefix} {name}")
    return out


def spec_reference() -> str:
    from zhouyi.spec import JobSpec

    rows = ["# Spec reference", "", "Generated from zhouyi's Pydantic models (`zhouyi/spec.py`) by `make docs`; do not "
            "edit. Every field of a spec, its type, its default (— when required) and what it is for; `zhouyi show "
            "SPEC` prints a spec with every default filled in, `zhouyi schema` the JSON schema.", "",
            "| field | type | default | about |", "|---|---|---|---|"]
    rows += _fields(JobSpec, "")
    return "\n".join(rows) + "\n"


def _fields(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _models(info.annotation)
        if inner:
            for kind, sub in inner:
                rows += _fields(sub, f"{path}{kind}.")
            continue
        rows.append(f"| `{path}` | {_type(info.annotation)} | {_default(info)} | "
                    f"{(info.description or '').replace('|', '/')} |")
        optional = [_bare(a) for a in typing.get_args(_bare(info.annotation)) if a is not type(None)]
        if len(optional) == 1 and isinstance(optional[0], type) and issubclass(optional[0], BaseModel):
            rows += _fields(optional[0], f"{path}.")  # a section that may be left out: its fields when given
    return rows


def _models(annotation) -> list[tuple[str, type[BaseModel]]]:
    """The models a field holds: itself, a list of them (`[]`), or a choice between them (`<name>`)."""
    annotation = _bare(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args and _models(args[0]):
        return [("[]", m) for _, m in _models(args[0])]
    members = [_bare(a) for a in args if a is not type(None)]
    if len(members) > 1 and all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
        return [(f"<{m.__name__}>", m) for m in members]
    return []


def _bare(annotation):
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _type(annotation) -> str:
    annotation = _bare(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation)).replace("|", "/")


def _default(info) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "—"
    value = info.default_factory() if info.default is PydanticUndefined else info.default
    if isinstance(value, BaseModel):
        return "…"
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return f"`{text}`".replace("|", "/") if len(text) <= 40 else f"`{text[:37]}...`"


def write(root: Path) -> list[Path]:
    """Write both references under `root`; the files written."""
    from zhouyi.files import atomic_write

    written = []
    for name, text in (("cli.md", cli_reference()), ("spec.md", spec_reference())):
        path = root / DOCS / name
        atomic_write(path, text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path.cwd()):
        print(path)
