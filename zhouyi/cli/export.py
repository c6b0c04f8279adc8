"""`zhouyi export`: merge a run's adapter, check the persona into the Modelfile, smoke-generate; or, with
--quantize, GPTQ the merge; --gguf, a GGUF for llama.cpp and Ollama; --check, the parity check (zhouyi.export)."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import dry_run_flag, run_args, run_for, verb


def add_verbs(sub) -> None:
    p = verb(sub, "export", cmd_export, "merge a run's adapter into safetensors shards with an Ollama Modelfile, then "
             "smoke-generate from them; --quantize 4|8 GPTQ-quantizes that merge")
    run_args(p)
    p.add_argument("--quantize", type=int, choices=[4, 8], help="second step: quantize the merged weights (GPTQ)")
    p.add_argument("--gguf", nargs="?", const="f16", choices=gguf_types(), metavar="TYPE",
                   help="second step: write the merged weights as a GGUF for llama.cpp and Ollama (TYPE: "
                   f"{', '.join(gguf_types())}; default f16), then check its answers against the adapter's")
    p.add_argument("--check", action="store_true", help="check that the merge and every GGUF of the run answer the "
                   "held-out questions as the adapter does (report in <run>/parity/)")
    p.add_argument("--force", action="store_true", help="replace an export folder zhouyi made before (never one "
                   "it did not make)")
    p.add_argument("--skip-gate", action="store_true", help="merge even when the quality gate (export.gate) says the "
                   "tuned model is worse than the base")
    dry_run_flag(p)
    p = verb(sub, "verify", cmd_verify, "recompute every digest an exported folder's provenance.json records (weights, "
             "card, data, spec, the evaluation it quotes): exit 1 when one differs")
    p.add_argument("folder", metavar="FOLDER", help="a folder `zhouyi export` wrote (merged/, merged-gguf-<type>/)")


def cmd_verify(args) -> int:
    from zhouyi.export.verify import DIFFERS, verify

    found = verify(Path(args.folder))
    width = max(len(name) for _, name, _ in found)
    for what, name, state in found:
        print(f"{what:10} {name:{width}}  {state}")
    bad = [name for _, name, state in found if state.startswith(DIFFERS)]
    print(f"{len(found) - len(bad)} of {len(found)} checked: " + (f"{len(bad)} differ ({', '.join(bad)})" if bad
                                                                   else "nothing differs"))
    return 1 if bad else 0


def gguf_types() -> tuple[str, ...]:
    from zhouyi.export.gguf import TYPES

    return TYPES


def cmd_export(args) -> int:
    from zhouyi.errors import UserError
    from zhouyi.files import sole_writer

    spec, run_dir = run_for(args)
    if sum(map(bool, (args.quantize, args.gguf, args.check))) > 1:
        raise UserError("--quantize, --gguf and --check are separate steps; give one")
    with sole_writer(run_dir, "export"):
        return _export(args, spec, run_dir)


def _export(args, spec, run_dir: Path) -> int:
    from zhouyi.errors import UserError
    from zhouyi.export import gguf, merge, parity
    from zhouyi.runs import render_context

    if args.gguf or args.check:
        if args.dry_run:
            raise UserError("--dry-run shows LLaMA-Factory commands; --gguf and --check run zhouyi's own")
        written = [gguf.write(spec, run_dir, args.gguf, args.force)] if args.gguf else None
        parity.check(spec, run_dir, render_context(None, run_dir, Path.cwd()), written)
        return 0
    if args.quantize:
        ctx = render_context(None, run_dir, Path.cwd())
        return merge.quantize(spec, run_dir, args.quantize, ctx, args.force, args.dry_run)
    return merge.merge(spec, run_dir, args.force, args.dry_run, args.skip_gate)
