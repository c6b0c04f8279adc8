"""Verbs about specs themselves: presets, show, schema, render."""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi.cli.common import load_spec, spec_args, verb
from zhouyi.errors import UserError


def add_verbs(sub) -> None:
    verb(sub, "presets", cmd_presets, "list the packaged specs")
    p = verb(sub, "show", cmd_show, "print the resolved spec (every default filled in)")
    spec_args(p)
    p.add_argument("--origins", action="store_true", help="one line a value, with where it came from")
    verb(sub, "schema", cmd_schema, "print the spec's JSON Schema (for editors)")
    p = verb(sub, "render", cmd_render, "write the LLaMA-Factory files for SPEC")
    spec_args(p)
    p.add_argument("-o", "--output", help="folder to write into (default: rendered/<name>)")
    p.add_argument("--force", action="store_true", help="overwrite files there that zhouyi did not write")


def cmd_presets(args) -> int:
    from zhouyi.load import load, preset_names

    for name in preset_names():
        print(f"{name:16} {load(name).spec.description}")
    return 0


def cmd_show(args) -> int:
    from zhouyi.load import to_yaml, with_origins

    loaded = load_spec(args)
    print(with_origins(loaded) if args.origins else to_yaml(loaded.spec), end="\n" if args.origins else "")
    return 0


def cmd_schema(args) -> int:
    from zhouyi.spec import JobSpec

    schema = JobSpec.model_json_schema()
    schema["properties"]["base"] = {"type": "string", "title": "Base",
                                    "description": "a preset name or spec file this spec starts from (zhouyi.load)"}
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def cmd_render(args) -> int:
    from zhouyi.files import commit, refuse_foreign
    from zhouyi.render import render
    from zhouyi.runs import render_context

    spec = load_spec(args).spec
    out = Path(args.output or Path("rendered") / spec.name).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file; name a folder to render into")
    files = render(spec, render_context(spec, out, Path.cwd()))
    # a second render replaces the first freely, and its own dataset_info.json with it
    refuse_foreign([out / name for name in files], args.force, registries=True)
    commit({out / name: text for name, text in files.items()})
    for name in files:
        print(out / name)
    return 0
