"""Loading a spec: a spec file or a packaged preset becomes one `LoadedSpec` (the spec, its own text, where it
came from, and where each value came from).

`base:` puts a preset or another spec file under a spec (a relative path is relative to the file that names
it); `--set key.path=value` changes one value on top. Mappings merge key by key; lists and scalars replace. A
`method` whose `finetuning_type` changes is replaced whole (LoRA keys mean nothing to full fine-tuning).
pydantic's errors are reworded here at the field path, with did-you-mean hints.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from zhouyi.errors import SpecError, UserError
from zhouyi.spec import JobSpec, cross_field_problems, managed_keys
from zhouyi.yamltext import load_yaml_text

SET_ORIGIN = "--set"


@dataclass(frozen=True)
class LoadedSpec:
    spec: JobSpec
    text: str  # the spec file's own text, as a run copies it (spec.yaml)
    source: str  # a file path, or preset:NAME
    origins: dict[str, str]  # leaf path -> the file, preset or --set that gave it


def load(ref: str, sets: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """A spec file or preset, with its `base:` chain resolved and each `--set key.path=value` applied."""
    text, where = read_source(ref)
    data, origins = _chain(text, where, [])
    for item in sets:
        _apply_set(data, origins, item)
    return LoadedSpec(from_data(data, where + (" with --set" if sets else "")), text, where, origins)


def apply_sets(data: dict, sets: list[str] | tuple[str, ...]) -> None:
    """Each `--set key.path=value` applied to a spec's data, in place."""
    origins: dict[str, str] = {}
    for item in sets:
        _apply_set(data, origins, item)


def from_text(text: str, where: str = "<spec>") -> JobSpec:
    """A spec from YAML text that names no `base:` (tests, generated specs)."""
    return from_data(mapping(text, where), where)


def from_data(data: dict[str, Any], where: str = "<spec>") -> JobSpec:
    """A spec from plain data (a run's recorded spec, a benchmark's variant); every problem named at its field."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(where, [describe(err) for err in exc.errors()]) from None
    problems = cross_field_problems(spec)
    if problems:
        raise SpecError(where, problems)
    return spec


def to_yaml(spec: JobSpec) -> str:
    """The resolved spec (every default filled in) as YAML, for `zhouyi show` and run folders."""
    return yaml.safe_dump(
        spec.model_dump(mode="json"), allow_unicode=True, sort_keys=False, default_flow_style=False, width=100
    )


# ---------------------------------------------------------------- files and presets


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in _presets_dir().iterdir() if p.name.endswith(".yaml"))


def _presets_dir():
    return resources.files("zhouyi") / "presets"


def read_source(ref: str) -> tuple[str, str]:
    """(text, where) for a spec file path or a packaged preset name."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in ref:
        if not path.is_file():
            hint = f"; packaged presets: {', '.join(preset_names())}"
            raise UserError(f"spec file not found: {ref}{hint}")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not a spec (not UTF-8 text: byte {exc.start} is {exc.object[exc.start]:#04x}); "
                            "a spec is a YAML text file") from None
    preset = _presets_dir() / f"{ref}.yaml"
    if not preset.is_file():
        close = difflib.get_close_matches(ref, preset_names(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"no spec file or preset named '{ref}'{hint}; presets: {', '.join(preset_names())}")
    return preset.read_text(encoding="utf-8"), f"preset:{ref}"


def mapping(text: str, where: str) -> dict[str, Any]:
    """A spec file's YAML as a mapping, or an error naming the file."""
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise UserError(f"{where}: nested too deep to read; it should be a YAML mapping a few levels deep") from None
    if not isinstance(data, dict):
        raise SpecError(where, [("", f"the spec must be a YAML mapping, got {type(data).__name__}")])
    return data


# ---------------------------------------------------------------- composition: base:, --set, origins


def _same_source(where: str) -> str:
    """A source as the cycle check compares it: `d/../d/x.yaml` and `./d/x.yaml` are `d/x.yaml`."""
    return where if where.startswith("preset:") else os.path.normpath(where)


def _chain(text: str, where: str, seen: list[str]) -> tuple[dict, dict[str, str]]:
    if _same_source(where) in map(_same_source, seen):
        raise UserError(f"spec base cycle: {' -> '.join([*seen, where])}")
    data = mapping(text, where)
    base = data.pop("base", None)
    merged: dict = {}
    origins: dict[str, str] = {}
    if base is not None:
        if not isinstance(base, str) or not base:
            raise SpecError(where, [("base", "a preset name or a spec file path")])
        if not where.startswith("preset:") and ("/" in base or base.endswith((".yaml", ".yml"))):
            base = os.path.relpath(os.path.normpath(Path(where).parent / base))  # `d/../d/x.yaml` is `d/x.yaml`
        merged, origins = _chain(*read_source(base), [*seen, where])
    _merge(merged, data, origins, where, "")
    return merged, origins


def _merge(dst: dict, src: dict, origins: dict[str, str], label: str, prefix: str) -> None:
    if src.get("finetuning_type", dst.get("finetuning_type")) != dst.get("finetuning_type"):
        dst.clear()  # another method: the old method's keys mean nothing to it
        _forget(origins, prefix.rstrip("."))
    for key, value in src.items():
        path = f"{prefix}{key}"
        old = dst.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            _merge(old, value, origins, label, path + ".")
            continue
        _forget(origins, path)
        dst[key] = copy.deepcopy(value)
        _record(value, origins, label, path)


def _forget(origins: dict[str, str], path: str) -> None:
    for stale in [p for p in origins if p == path or p.startswith(path + ".")]:
        del origins[stale]


def _record(value: Any, origins: dict[str, str], label: str, path: str) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _record(inner, origins, label, f"{path}.{key}")
    else:
        origins[path] = label


def _apply_set(data: dict, origins: dict[str, str], item: str) -> None:
    path, sep, raw = item.partition("=")
    if not sep or not path.strip():
        raise UserError(f"--set {item!r}: expected key.path=value, e.g. --set train.learning_rate=2e-4")
    keys = path.strip().split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {path}: '{'.'.join(keys[:i + 1])}' is a value, not a section")
        node = child
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UserError(f"--set {path}: the value is not valid YAML ({exc})") from None
    _merge(node, {keys[-1]: value}, origins, SET_ORIGIN, ".".join(keys[:-1]) + "." if len(keys) > 1 else "")


def with_origins(loaded: LoadedSpec) -> str:
    """Every resolved value as `path: value  # origin` (`default` where no spec file or --set gave it)."""
    lines: list[str] = []
    origins = loaded.origins

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else key)
            return
        origin = origins.get(path) or next((o for p, o in origins.items() if path.startswith(p + ".")), "default")
        shown = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10**6)
        lines.append(f"{path}: {shown.strip().removesuffix('...').strip()}  # {origin}")

    walk(loaded.spec.model_dump(mode="json"), "")
    return "\n".join(lines)


# ---------------------------------------------------------------- pydantic's errors, reworded at the field


_METHOD_TAGS = ("lora", "qlora", "full", "freeze")


SECRET_FIELDS = ("api_key_env", "base_url")  # a wrong value of these may be a key, or a URL with a password


def describe(err: dict[str, Any], root: type[BaseModel] = JobSpec) -> tuple[str, str]:
    """One Pydantic error as (field path, message), worded for the user; `root`: the model the path starts from
    (a whole spec, or a section given as a file of its own)."""
    loc = [part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-after"))]
    shown = [p for i, p in enumerate(loc) if not (i == 1 and loc[0] == "method" and p in _METHOD_TAGS)]
    path = ".".join(str(p) for p in shown)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        known = _fields_at(loc[:-1], root)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        home = managed_keys().get(key)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        elif home == path and len(loc) > 2 and loc[0] == "method":
            hint = f"; finetuning_type {loc[1]} takes no '{key}' (keys: {', '.join(known)})"
        elif home and "." in home:
            hint = f"; '{key}' belongs at '{home}'"
        else:
            hint = f"; known keys: {', '.join(known)}" if known else ""
        return path, f"unknown key{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    if loc and loc[-1] in SECRET_FIELDS:
        return path, msg  # never the value: it may hold a key or a password
    if err["type"] == "literal_error" and isinstance(err.get("input"), str):
        choices = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        close = difflib.get_close_matches(err["input"], choices, n=1, cutoff=0.5)
        return path, f"{msg} (got {err['input']!r}" + (f"; did you mean '{close[0]}'?)" if close else ")")
    if err["type"] in ("literal_error", "union_tag_invalid") or isinstance(err.get("input", {}), (dict, list)):
        return path, msg
    return path, f"{msg} (got {err['input']!r})"


def _fields_at(loc: list[Any], root: type[BaseModel] = JobSpec) -> list[str]:
    """Field names of the model found by walking `loc` from `root` (for did-you-mean hints)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        else:  # a discriminated union: the loc names the chosen member's tag
            members = [m for m in typing.get_args(model) if isinstance(m, type) and issubclass(m, BaseModel)]
            model = next((m for m in members if m.model_fields["finetuning_type"].default == part), None)
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is list:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp
