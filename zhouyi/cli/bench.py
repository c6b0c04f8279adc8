"""`zhouyi bench`: measure a spec's training speed with short real trainings (zhouyi.speed)."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import load_spec, spec_args, verb


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
    from zhouyi.speed import runner

    spec = load_spec(args).spec
    opts = runner.BenchOptions(steps=args.steps, warmup=args.warmup, random_init=args.random_init,
                               cutoff_len=args.cutoff, max_samples=args.max_samples, cpu=args.cpu,
                               profile=args.profile,
                               tokenizer=Path(args.tokenizer).resolve() if args.tokenizer else None)
    return runner.bench(spec, args.spec, opts, Path.cwd(), Path(args.output) if args.output else None, args.ladder,
                        Path(args.write_profile) if args.write_profile else None)
