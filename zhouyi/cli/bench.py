"""`zhouyi bench`: measure a spec's training speed with short real trainings (zhouyi.speed)."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import load_spec, spec_args, verb
from zhouyi.errors import UserError


def add_verbs(sub) -> None:
    p = verb(sub, "bench", cmd_bench, "measure SPEC's training speed: tokens/s, MFU, peak memory (real short runs)")
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
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="also profile STEPS steps after the warm-up (torch.profiler): where a step's time goes")
    p.add_argument("-o", "--output", help="report folder (default: <runs_dir>/bench-<name>-<time>)")
    p.add_argument("--write-profile", metavar="FILE", help="with --ladder: write the fastest LoRA rung as a spec "
                   "(base: SPEC plus the speed keys, the card and date measured on) to FILE")


def cmd_bench(args) -> int:
    from zhouyi import layout, train
    from zhouyi.runs import runs_dir
    from zhouyi.speed import runner

    spec = load_spec(args).spec
    if args.warmup < 1 or args.steps <= args.warmup:
        raise UserError(f"--steps {args.steps} --warmup {args.warmup}: need warmup >= 1 and steps > warmup")
    if args.write_profile and not args.ladder:
        raise UserError("--write-profile FILE writes the ladder's fastest rung: add --ladder")
    if args.write_profile:
        from zhouyi.files import refuse_foreign

        # before minutes of runs
        refuse_foreign([Path(args.write_profile)], False, what="--write-profile", force_flag=None)
    if args.profile < 0 or args.warmup + args.profile > args.steps:
        raise UserError(f"--profile {args.profile}: profile at most --steps minus --warmup "
                        f"({args.steps - args.warmup}) steps")
    opts = runner.BenchOptions(steps=args.steps, warmup=args.warmup, random_init=args.random_init,
                               cutoff_len=args.cutoff, max_samples=args.max_samples, cpu=args.cpu,
                               profile=args.profile,
                               tokenizer=Path(args.tokenizer).resolve() if args.tokenizer else None)
    base = Path.cwd()
    train.register_for_training(spec, base)
    work = (Path(args.output) if args.output else layout.bench_dir(runs_dir(spec, base), spec.run_name)).resolve()
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
    if args.write_profile:
        from zhouyi.files import commit

        fragment = runner.speed_profile(args.spec, results, Path(args.write_profile))
        if fragment is None:
            raise UserError("no LoRA rung ran, so there is no speed profile to write; see the report")
        commit({Path(args.write_profile): fragment})
        print(f"speed profile: {args.write_profile} (zhouyi show {args.write_profile})")
    return 0 if any(r.status == "ok" for r in results) else 1
