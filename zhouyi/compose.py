"""Spec composition: `base:` (a preset or a spec file) under a spec, `--set key.path=value` on top, and
where each value came from.

Mappings merge key by key; lists and scalars replace. A `method` whose `finetuning_type` changes is
replaced whole (LoRA keys mean nothing to full fine-tuning). A relative `base:` path is relative to
the file that names it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from zhouyi.errors import SpecError, UserError
from zhouyi.spec import JobSpec, read_spec_source, spec_from_dict, spec_mapping
from zhouyi.yamlio import load_yaml_text

SET_ORIGIN = "--set"


def resolve(ref: str, sets: list[str] | tuple[str, ...] = ()) -> tuple[dict, dict[str, str], str, str]:
    """(merged data, origin of each leaf path, the spec's own text, where it came from)."""
    text, where = read_spec_source(ref)
    data, origins = _chain(text, where, [])
    for item in sets:
        _apply_set(data, origins, item)
    return data, origins, text, where


def load(ref: str, sets: list[str] | tuple[str, ...] = ()) -> tuple[JobSpec, dict[str, str], str, str]:
    data, origins, text, where = resolve(ref, sets)
    return spec_from_dict(data, where + (" with --set" if sets else "")), origins, text, where


def _chain(text: str, where: str, seen: list[str]) -> tuple[dict, dict[str, str]]:
    if where in seen:
        raise UserError(f"spec base cycle: {' -> '.join([*seen, where])}")
    data = spec_mapping(text, where)
    base = data.pop("base", None)
    merged: dict = {}
    origins: dict[str, str] = {}
    if base is not None:
        if not isinstance(base, str) or not base:
            raise SpecError(where, [("base", "a preset name or a spec file path")])
        if not where.startswith("preset:") and ("/" in base or base.endswith((".yaml", ".yml"))):
            base = str(Path(where).parent / base)
        merged, origins = _chain(*read_spec_source(base), [*seen, where])
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


def with_origins(spec: JobSpec, origins: dict[str, str]) -> str:
    """Every resolved value as `path: value  # origin` (`default` where no spec file or --set gave it)."""
    lines: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else key)
            return
        origin = origins.get(path) or next((o for p, o in origins.items() if path.startswith(p + ".")), "default")
        shown = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10**6)
        lines.append(f"{path}: {shown.strip().removesuffix('...').strip()}  # {origin}")

    walk(spec.model_dump(mode="json"), "")
    return "\n".join(lines)
