"""`zhouyi export`: merge a run's adapter, check the persona into the Modelfile, smoke-generate; or, with
--quantize, GPTQ the merge (zhouyi.export)."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import dry_run_flag, run_args, run_for, verb


def add_verbs(sub) -> None:
    p = verb(sub, "export", cmd_export, "merge a run's adapter into safetensors shards with an Ollama Modelfile, then "
             "smoke-generate from them; --quantize 4|8 GPTQ-quantizes that merge")
    run_args(p)
    p.add_argument("--quantize", type=int, choices=[4, 8], help="second step: quantize the merged weights (GPTQ)")
    p.add_argument("--force", action="store_true", help="export even so: past the quality gate (export.gate), "
                   "into a non-empty export folder")
    dry_run_flag(p)


def cmd_export(args) -> int:
    from zhouyi import export
    from zhouyi.runs import render_context

    spec, run_dir = run_for(args)
    if args.quantize:
        ctx = render_context(None, run_dir, Path.cwd())
        return export.quantize(spec, run_dir, args.quantize, ctx, args.force, args.dry_run)
    return export.merge(spec, run_dir, args.force, args.dry_run)
