"""`zhouyi` command line: one small function per verb (parse, call, print, exit code).

SPEC is a spec file path or a packaged preset name everywhere. User errors exit 2 with a message
that names the field or file; a launched llamafactory-cli's exit code is passed through. The verbs that
use a trained run (eval, ask, chat, api, webui, export) live in cli_model.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from zhouyi import __version__, cli_model
from zhouyi.cli_common import context, load_ref, set_flag, spec_args
from zhouyi.errors import UserError

FORMATS = ["alpaca", "records", "classical", "csv", "markdown"]


# ------------------------------------------------------------------ verbs


def cmd_presets(args) -> int:
    from zhouyi.spec import load_spec, preset_names

    for name in preset_names():
        print(f"{name:16} {load_spec(name).description}")
    return 0


def cmd_show(args) -> int:
    from zhouyi.compose import load, with_origins
    from zhouyi.spec import spec_to_yaml

    spec, origins, _, _ = load(args.spec, args.set or ())
    print(with_origins(spec, origins) if args.origins else spec_to_yaml(spec), end="\n" if args.origins else "")
    return 0


def cmd_schema(args) -> int:
    from zhouyi.spec import JobSpec

    schema = JobSpec.model_json_schema()
    schema["properties"]["base"] = {"type": "string", "title": "Base",
                                    "description": "a preset name or spec file this spec starts from (zhouyi.compose)"}
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def cmd_render(args) -> int:
    from zhouyi.render import render
    from zhouyi.runs import write_files

    spec, _, _ = load_ref(args.spec, args.set)
    out = Path(args.output or Path("rendered") / spec.name).resolve()
    files = render(spec, context(out, spec))
    write_files(out, files)
    for name in files:
        print(out / name)
    return 0


def cmd_validate(args) -> int:
    from zhouyi.hardware import parse_hardware
    from zhouyi.validate import validate_specs

    hardware = parse_hardware(args.hardware) if args.hardware else None
    reports = validate_specs(args.specs, Path.cwd(), hardware, args.set or ())
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2, ensure_ascii=False))
    else:
        for report in reports:
            print(f"{'ok  ' if report.ok else 'FAIL'} {report.spec}")
            for p in report.problems:
                print(f"  {p.level}: {p.where}: {p.message}")
    return 0 if all(r.ok for r in reports) else 2


def cmd_register(args) -> int:
    spec, _, _ = load_ref(args.spec, args.set)
    _register(spec, args.force)
    return 0


def _register(spec, force: bool) -> None:
    from zhouyi.registry import merge_entries
    from zhouyi.render import DATASET_INFO, dataset_entries

    path = context(Path.cwd()).resolve(spec.data.dataset_dir) / DATASET_INFO
    result = merge_entries(path, dataset_entries(spec), force=force)
    what = ", ".join(f"{k}: {', '.join(v)}" for k, v in
                     (("added", result.added), ("updated", result.updated), ("unchanged", result.unchanged)) if v)
    print(f"registry {path}: {what or 'nothing to register'}")


def cmd_tiny_model(args) -> int:
    from zhouyi.tiny import build_tiny_model, corpus_from_alpaca

    corpus_file = Path(args.corpus)
    corpus = corpus_from_alpaca(corpus_file) if corpus_file.is_file() else None
    out = build_tiny_model(Path(args.dir), corpus, seed=args.seed)
    print(f"tiny model written to {out} (corpus: {corpus_file if corpus else 'built-in'})")
    return 0


def cmd_train(args) -> int:
    if args.resume:
        return _resume(args)
    if not args.spec:
        raise UserError("train needs SPEC (a spec file or preset), or --resume RUN")
    spec, text, where = load_ref(args.spec, args.set)
    _check_node_rank(spec, args.node_rank)
    if args.dry_run:
        print("dry run: the registry is left as it is")
    else:
        _register(spec, args.force)
    run_dir, cmd = _new_run(spec, text, where, args.node_rank)
    if args.dry_run:
        print(f"dry run: rendered files in {run_dir}\nrun: {cmd.shell()}")
        return 0
    return _train(cmd, run_dir)


def _new_run(spec, text: str, where: str, node_rank: int | None = None):
    """A fresh run dir with the rendered files and the manifest; returns it and its train command."""
    from zhouyi import launch
    from zhouyi.render import render
    from zhouyi.runs import new_run_dir, write_files, write_manifest

    run_dir = new_run_dir(spec, Path.cwd())
    ctx = context(run_dir, spec)
    files = render(spec, ctx)
    write_files(run_dir, files)
    cmd = launch.build(spec, "train", run_dir, node_rank=node_rank)
    write_manifest(run_dir, spec, text, where, ctx, files, cmd)
    return run_dir, cmd


def _train(cmd, run_dir: Path) -> int:

    from zhouyi import launch
    from zhouyi.progress import LogWatcher
    from zhouyi.render import TRAIN_DIR

    # in CI and logs, plain progress lines; on a terminal LLaMA-Factory's own bar
    watching = LogWatcher(run_dir / TRAIN_DIR / "trainer_log.jsonl") if not sys.stdout.isatty() \
        else contextlib.nullcontext()
    with watching:
        code = launch.run(cmd)
    print(f"{'trained' if code == 0 else f'training failed (exit {code})'}: {run_dir / TRAIN_DIR}")
    return code


def cmd_launch_script(args) -> int:
    from zhouyi.launch_script import render_script
    from zhouyi.yamlio import atomic_write

    spec, text, where = load_ref(args.spec, args.set)
    _register(spec, args.force)
    run_dir, cmd = _new_run(spec, text, where)
    name, script = render_script("slurm" if args.slurm else "shell", spec, cmd, run_dir)
    atomic_write(run_dir / name, script)
    os.chmod(run_dir / name, 0o755)
    print(run_dir / name)
    return 0


def cmd_runs(args) -> int:
    from zhouyi.history import list_runs

    runs_dir = Path(args.runs_dir)
    rows = list_runs(runs_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs under {runs_dir}")
        return 0
    print(f"{'run':40} {'status':12} {'steps':>9} {'loss':>8} {'min':>6}  adapter merged")
    for r in rows:
        loss = "-" if r["loss"] is None else f"{r['loss']:.4f}"
        minutes = "-" if r["minutes"] is None else f"{r['minutes']:.1f}"
        print(f"{r['run']:40} {r['status']:12} {r['steps']:>9} {loss:>8} {minutes:>6}  "
              f"{'yes' if r['adapter'] else 'no':7} {'yes' if r['merged'] else 'no'}")
    return 0


def cmd_diff(args) -> int:
    from zhouyi.history import diff_runs

    text = diff_runs(Path(args.run_a), Path(args.run_b))
    print(text or "the runs' specs and rendered configs are the same")
    return 0


def cmd_rerun(args) -> int:
    """A new run from a run's recorded spec, after saying what changed since (data, package versions)."""
    from zhouyi.history import drift
    from zhouyi.runs import read_manifest
    from zhouyi.spec import spec_from_dict, spec_to_yaml

    old = Path(args.run).resolve()
    spec = spec_from_dict(read_manifest(old)["spec"], str(old))
    for note in drift(old):
        print(f"warning: {note}", file=sys.stderr)
    if not args.dry_run:
        _register(spec, args.force)
    run_dir, cmd = _new_run(spec, spec_to_yaml(spec), f"rerun of {old}")
    if args.dry_run:
        print(f"dry run: rendered files in {run_dir}\nrun: {cmd.shell()}")
        return 0
    return _train(cmd, run_dir)


def cmd_download(args) -> int:
    from zhouyi.download import fetch, remember

    spec, _, _ = load_ref(args.spec, args.set)
    folder = fetch(spec, Path.cwd(), Path(args.cache_dir).resolve() if args.cache_dir else None, args.offline,
                   args.timeout, args.include)
    if spec.model.source != "local":
        remember(Path.cwd(), spec, folder)
    print(f"{spec.model.model_name_or_path}@{spec.model.model_revision}: complete at {folder}")
    return 0


def cmd_doctor(args) -> int:
    from zhouyi.doctor import environment, spec_problems

    env, hardware = environment()
    problems = spec_problems(load_ref(args.spec, args.set)[0], env, hardware, Path.cwd()) if args.spec else []
    if args.json:
        print(json.dumps(env | {"problems": problems}, indent=2))
        return 1 if problems else 0
    print(f"python {env['python']}, torch {env['torch']} (built for CUDA {env['cuda'] or 'none'}), "
          f"llamafactory {env['llamafactory'] or 'not installed'}, free disk {env['free_disk_gib']} GiB")
    for gpu in env["gpus"] or [{"name": "no CUDA GPU"}]:
        extra = f", {gpu['memory_gib']} GiB, bf16 {'yes' if gpu['bf16'] else 'no'}" if "memory_gib" in gpu else ""
        print(f"  gpu: {gpu['name']}{extra}")
    for name, need in env["llamafactory_needs"].items():
        verdict = "ok" if need["ok"] else f"llamafactory wants {need['llamafactory_wants']}"
        print(f"  {name} {need['installed']} ({verdict})")
    print("  optional: " + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in env["optional"].items()))
    if args.spec:
        print(f"{args.spec}: " + ("this machine can run it" if not problems else "blocked here:"))
        for problem in problems:
            print(f"  - {problem}")
    return 1 if problems else 0


def _check_node_rank(spec, node_rank: int | None) -> None:
    if node_rank is not None and not 0 <= node_rank < spec.launch.nnodes:
        raise UserError(f"--node-rank {node_rank}: launch.nnodes is {spec.launch.nnodes}, so ranks are "
                        f"0..{spec.launch.nnodes - 1}")


def _resume(args) -> int:
    """Continue a stopped run from its last checkpoint, in the same run dir, with the files it was made with."""
    from dataclasses import replace

    from zhouyi import launch
    from zhouyi.runs import last_checkpoint, read_manifest
    from zhouyi.spec import spec_from_dict
    from zhouyi.yamlio import atomic_write
    from zhouyi.yamlsafe import yaml_value

    if args.spec:
        raise UserError("give SPEC or --resume RUN, not both: a resumed run keeps the spec it was started with")
    run_dir = Path(args.resume).resolve()
    checkpoint = last_checkpoint(run_dir)
    spec = spec_from_dict(read_manifest(run_dir)["spec"], str(run_dir))
    _check_node_rank(spec, args.node_rank)
    config = run_dir / "resume.yaml"
    text = (run_dir / "train.yaml").read_text(encoding="utf-8")
    resume = f"\n### resume ({checkpoint.name})\nresume_from_checkpoint: {yaml_value(str(checkpoint))}\n"
    atomic_write(config, text + resume)
    cmd = launch.build(spec, "train", run_dir, node_rank=args.node_rank)
    cmd = replace(cmd, argv=[*cmd.argv[:-1], str(config)])
    print(f"resuming {run_dir.name} from {checkpoint.name}")
    if args.dry_run:
        print(f"run: {cmd.shell()}")
        return 0
    return _train(cmd, run_dir)


def cmd_bench(args) -> int:
    import time

    from zhouyi.bench import runner
    from zhouyi.runs import runs_dir

    spec, _, _ = load_ref(args.spec, args.set)
    if args.warmup < 1 or args.steps <= args.warmup:
        raise UserError(f"--steps {args.steps} --warmup {args.warmup}: need warmup >= 1 and steps > warmup")
    opts = runner.BenchOptions(steps=args.steps, warmup=args.warmup, random_init=args.random_init,
                               cutoff_len=args.cutoff, max_samples=args.max_samples, cpu=args.cpu,
                               tokenizer=Path(args.tokenizer).resolve() if args.tokenizer else None)
    _register(spec, force=False)
    base = Path.cwd()
    work = Path(args.output).resolve() if args.output else (
        runs_dir(spec, base) / f"bench-{spec.run_name}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.ladder:
        results = runner.ladder(spec, opts, base, work,
                                on_result=lambda so_far: runner.write_report(work, spec, opts, so_far))
    else:
        results = [runner.measure(spec.name, "the spec as written", runner.bench_data(spec, opts, base, work),
                                  opts, base, work)]
    json_path, _ = runner.write_report(work, spec, opts, results)
    print(runner.format_table(results))
    print(f"bench report: {json_path}")
    return 0 if any(r.status == "ok" for r in results) else 1


def cmd_estimate(args) -> int:
    from zhouyi.estimate import arch_for, estimate, format_estimate, setup_for, smallest_fix
    from zhouyi.hardware import hardware_problems, parse_hardware

    spec, _, _ = load_ref(args.spec, args.set)
    hardware = parse_hardware(args.hardware)
    arch = arch_for(spec, Path.cwd())
    result = estimate(arch, setup_for(spec, arch, hardware), hardware)
    fix = None if result.fits else smallest_fix(arch, result.setup, hardware)
    problems = hardware_problems(spec, hardware)
    if args.json:
        print(json.dumps({"hardware": hardware.label, "parameters": arch.params(), "trainable": result.setup.trainable,
                          "parts": result.parts, "total": result.total, "fits": result.fits,
                          "headroom": result.headroom, "fix": fix[0] if fix else None,
                          "problems": [{"where": w, "message": m} for w, m in problems]}, indent=2))
    else:
        print(f"{arch.params():,} parameters, {result.setup.trainable:,} trainable")
        print(format_estimate(arch, result, hardware))
        if not result.fits:
            print(f"smallest change that fits: {fix[0]} ({fix[1].total / 2**30:.2f} GiB)" if fix
                  else "nothing zhouyi knows makes it fit: use more or larger GPUs")
        for where, message in problems:
            print(f"  problem: {where}: {message}")
    return 0 if result.fits and not problems else 1


def _clean_options(args):
    """CleanOptions from the spec's data.clean (with --spec) and the flags given, plus the spec and its section."""
    from zhouyi.data.clean import CleanOptions
    from zhouyi.data.rules import DEFAULT_RULES, Rule, case_study_rules

    spec, clean, persona = None, None, CleanOptions.persona
    if args.spec:
        spec, _, _ = load_ref(args.spec, args.set)
        clean, persona = spec.data.clean, spec.model.default_system or persona

    def pick(flag, field: str, default):
        return flag if flag is not None else getattr(clean, field) if clean else default

    near_dup = pick(args.near_dup, "near_dup_threshold", CleanOptions.near_dup_threshold)
    if not 0 <= near_dup < 1:
        raise UserError(f"--near-dup {near_dup}: a Jaccard similarity in [0, 1); 0 turns it off")
    rules = case_study_rules(DEFAULT_RULES, pick(args.case_studies, "case_studies", "drop"))
    if clean:
        rules = tuple(r for r in rules if r.name not in clean.disable_rules) + tuple(
            Rule(r.name, r.description or "spec rule", r.pattern, r.action, r.replacement) for r in clean.rules)
    opts = CleanOptions(
        min_han=pick(args.min_han, "min_han", CleanOptions.min_han),
        max_han=clean.max_han if clean else CleanOptions.max_han, persona=persona,
        persona_as=pick(args.persona_as, "persona_as", CleanOptions.persona_as),
        eval_ratio=pick(args.eval_ratio, "eval_ratio", CleanOptions.eval_ratio),
        seed=pick(args.seed, "seed", CleanOptions.seed), near_dup_threshold=near_dup or None, rules=rules,
        t2s=args.t2s or bool(clean and clean.t2s),
        title_fields=tuple(args.title_field or (clean.title_fields if clean else CleanOptions.title_fields)),
        text_fields=tuple(args.text_field or (clean.text_fields if clean else CleanOptions.text_fields)))
    return opts, spec, clean


def cmd_data_clean(args) -> int:
    from zhouyi.data.pipeline import eval_path, run_clean

    opts, spec, clean = _clean_options(args)
    inputs = [*(clean.inputs if clean else []), *args.inputs]
    output = args.output or (str(Path(spec.data.dataset_dir) / clean.output) if clean else None)
    if not inputs or not output:
        raise UserError("data clean needs INPUT files and -o FILE, or --spec SPEC with data.clean set")
    report = args.report or (clean.report if clean else None)
    result = run_clean([Path(p) for p in inputs], Path(output), Path(report) if report else None, opts,
                       fmt=args.format or (clean.format if clean else None), register=not args.no_register)
    r = result.report
    print(f"{r['rows_in']} rows in, {r['rows_out']} out: {output} ({r['train_rows']} train), "
          f"{eval_path(Path(output))} ({r['eval_rows']} eval); drops: {r['drops']}")
    return 0


def cmd_data_explain(args) -> int:
    from zhouyi.data.explain import explain

    opts, _, clean = _clean_options(args)
    print("\n".join(explain(Path(args.file), args.row, opts, args.format or (clean.format if clean else None))))
    return 0


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhouyi",
        description="Typed specs -> LLaMA-Factory configs -> llamafactory-cli. SPEC is a spec file or a preset name.",
    )
    parser.add_argument("--version", action="version", version=f"zhouyi {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    verb("presets", cmd_presets, "list the packaged specs")
    p = verb("show", cmd_show, "print the resolved spec (every default filled in)")
    spec_args(p)
    p.add_argument("--origins", action="store_true", help="one line a value, with where it came from")
    verb("schema", cmd_schema, "print the spec's JSON Schema (for editors)")

    p = verb("render", cmd_render, "write the LLaMA-Factory files for SPEC")
    spec_args(p)
    p.add_argument("-o", "--output", help="folder to write into (default: rendered/<name>)")

    p = verb("validate", cmd_validate, "check specs, their rendered configs (llamafactory's parser) and data")
    p.add_argument("specs", nargs="+", metavar="spec")
    set_flag(p)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--hardware", help="also check the specs run and fit there: cpu, h100, 4x4090, 8xa100-80g, ...")

    p = verb("register", cmd_register, "merge the spec's datasets into <dataset_dir>/dataset_info.json")
    spec_args(p)
    p.add_argument("--force", action="store_true", help="repoint an existing entry of the same name")

    p = verb("tiny-model", cmd_tiny_model, "build the tiny random Qwen2 model used by the demo and tests")
    p.add_argument("dir")
    p.add_argument("--corpus", default="data/zhougong_demo.json", help="alpaca JSON to train the tokenizer on")
    p.add_argument("--seed", type=int, default=0)

    p = verb("train", cmd_train, "train SPEC in a new run directory with llamafactory-cli train")
    spec_args(p, optional=True)
    p.add_argument("--resume", metavar="RUN", help="continue the stopped run RUN from its last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="render and print the command; run nothing")
    p.add_argument("--force", action="store_true", help="repoint registry entries of the same name")
    p.add_argument("--node-rank", type=int, default=None, help="this node's rank in a multi-node job")

    p = verb("download", cmd_download, "fetch SPEC's model (ModelScope / Hugging Face), check it, train from it")
    spec_args(p)
    p.add_argument("--cache-dir", help="the hub's cache folder (default: the hub's own)")
    p.add_argument("--offline", action="store_true", help="use the cache only; never touch the network")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="only files matching (repeatable), e.g. '*.safetensors' '*.json' 'merges.txt'")
    p.add_argument("--timeout", type=float, default=600, help="seconds before an unanswering hub is given up")

    p = verb("doctor", cmd_doctor, "this machine's Python, torch, GPUs, packages and disk; with SPEC, can it run it")
    spec_args(p, optional=True)
    p.add_argument("--json", action="store_true")

    p = verb("runs", cmd_runs, "list runs: status, steps, last loss, minutes, adapter and merged weights")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--json", action="store_true")

    p = verb("diff", cmd_diff, "show how two runs' specs and rendered configs differ")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")

    p = verb("rerun", cmd_rerun, "train again from a run's recorded spec; warns when data or versions changed")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--dry-run", action="store_true", help="render and print the command; run nothing")
    p.add_argument("--force", action="store_true", help="repoint registry entries of the same name")

    p = verb("launch-script", cmd_launch_script, "render SPEC into a new run and write its per-node launch script")
    spec_args(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--slurm", action="store_true", help="an sbatch script: one task a node")
    kind.add_argument("--shell", action="store_true", help="a script each node runs with its NODE_RANK")
    p.add_argument("--force", action="store_true", help="repoint registry entries of the same name")

    cli_model.add_verbs(verb)

    p = verb("bench", cmd_bench, "measure SPEC's training speed: tokens/s, MFU, peak memory (real short runs)")
    spec_args(p)
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per measured run")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the rates")
    p.add_argument("--ladder", action="store_true", help="run the ablation ladder (baseline, packing, ...)")
    p.add_argument("--random-init", action="store_true",
                   help="build the model from its config with random weights (no download, no weights)")
    p.add_argument("--tokenizer", help="tokenizer folder for --random-init (default: models/tiny-qwen2)")
    p.add_argument("--cutoff", type=int, help="cutoff_len for the measured runs (default: the spec's)")
    p.add_argument("--max-samples", type=int, help="rows to tokenize (default: the spec's)")
    p.add_argument("--cpu", action="store_true", help="measure on the CPU in fp32, whatever the spec's device")
    p.add_argument("-o", "--output", help="report folder (default: <runs_dir>/bench-<name>-<time>)")

    p = verb("estimate", cmd_estimate, "per-GPU training memory of SPEC on given hardware, with the smallest fix")
    spec_args(p)
    p.add_argument("--hardware", required=True, help="cpu, h100, 4x4090, 8xa100-80g, ... (count x card)")
    p.add_argument("--json", action="store_true")

    data = sub.add_parser("data", help="clean scraped dream data into an alpaca dataset")
    data_sub = data.add_subparsers(dest="data_verb", required=True, metavar="DATA_VERB")
    p = data_sub.add_parser("clean", help="clean, dedup and split INPUT files into an alpaca dataset, with a report")
    p.set_defaults(func=cmd_data_clean)
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    p.add_argument("-o", "--output", help="train file (the eval split goes beside it as *_eval.json)")
    p.add_argument("--report", help="folder for report.json and report.md")
    p.add_argument("--format", choices=FORMATS, help="default: from the file (a folder: markdown pages)")
    _cleaning_flags(p)
    p.add_argument("--no-register", action="store_true", help="leave dataset_info.json alone")
    p = data_sub.add_parser("explain", help="show what cleaning does to row ROW of FILE, rule by rule")
    p.set_defaults(func=cmd_data_explain)
    p.add_argument("file", metavar="FILE")
    p.add_argument("row", metavar="ROW", type=int, help="record number in FILE, from 0")
    p.add_argument("--format", choices=FORMATS, help="default: from the file (a folder: markdown pages)")
    _cleaning_flags(p)
    return parser


def _cleaning_flags(p: argparse.ArgumentParser) -> None:
    """Flags `data clean` and `data explain` share; unset ones come from --spec, else zhouyi's defaults."""
    p.add_argument("--spec", help="take settings (rules, thresholds, output) from the spec's data.clean section")
    set_flag(p)
    p.add_argument("--min-han", type=int, help="drop outputs with fewer Han characters (default 20)")
    p.add_argument("--persona-as", choices=["system", "instruction"], help="default: system")
    p.add_argument("--eval-ratio", type=float, help="share of rows held out for eval (default 0.05)")
    p.add_argument("--seed", type=int, help="split and question phrasing seed (default 42)")
    p.add_argument("--t2s", action="store_true", help="convert traditional to simplified Chinese (OpenCC) first")
    p.add_argument("--title-field", action="append", help="row field holding the title (repeatable; default: "
                   "title, name, keyword)")
    p.add_argument("--text-field", action="append", help="row field holding the text (repeatable; default: "
                   "text, detail, content, body)")
    p.add_argument("--case-studies", choices=["drop", "keep_analysis"],
                   help="readers' 梦境描述/梦境解析 cases: drop them (default) or keep the analysis")
    p.add_argument("--near-dup", type=float,
                   help="Jaccard similarity (character 3-grams) from which rows are near duplicates; 0: off (0.8)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"zhouyi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `zhouyi diff A B | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
