"""Verbs to run before spending GPU time: validate, doctor, estimate (zhouyi.preflight)."""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi.cli.common import load_spec, set_flag, spec_args, verb
from zhouyi.errors import UserError

HARDWARE_HELP = "cpu, h100, 4x4090, 8xa100-80g, ... (count x card)"


def add_verbs(sub) -> None:
    p = verb(sub, "validate", cmd_validate, "check specs, their rendered configs (llamafactory's parser) and data")
    p.add_argument("specs", nargs="+", metavar="spec")
    set_flag(p)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--hardware", help="also check the specs run and fit there: " + HARDWARE_HELP)

    p = verb(sub, "doctor", cmd_doctor,
             "this machine's Python, torch, GPUs, packages and disk; with SPEC, can it run it")
    spec_args(p, optional=True)
    p.add_argument("--json", action="store_true")

    p = verb(sub, "estimate", cmd_estimate, "per-GPU training memory of SPEC on given hardware, with the smallest fix")
    spec_args(p)
    p.add_argument("--hardware", required=True, help=HARDWARE_HELP)
    p.add_argument("--measured", metavar="BENCH_JSON", help="a `zhouyi bench` report measured on that card: the "
                   "largest micro-batch that fits, from its measured peaks")
    p.add_argument("--json", action="store_true")


def cmd_validate(args) -> int:
    from zhouyi.preflight.hardware import parse_hardware
    from zhouyi.preflight.validate import validate_specs

    hardware = parse_hardware(args.hardware) if args.hardware is not None else None
    reports = validate_specs(args.specs, Path.cwd(), hardware, args.set or ())
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2, ensure_ascii=False))
    else:
        for report in reports:
            print(f"{'ok  ' if report.ok else 'FAIL'} {report.spec}")
            for p in report.problems:
                print(f"  {p.level}: {p.where}: {p.message}")
    return 0 if all(r.ok for r in reports) else 2


def cmd_doctor(args) -> int:
    from zhouyi.preflight.doctor import environment, spec_problems

    env, hardware = environment()
    problems = spec_problems(load_spec(args).spec, env, hardware, Path.cwd()) if args.spec else []
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


def cmd_estimate(args) -> int:
    from zhouyi.preflight.estimate import arch_for, estimate, format_estimate, setup_for, smallest_fix
    from zhouyi.preflight.hardware import hardware_problems, parse_hardware
    from zhouyi.preflight.measured import describe

    spec = load_spec(args).spec
    hardware = parse_hardware(args.hardware)
    arch = arch_for(spec, Path.cwd())
    result = estimate(arch, setup_for(spec, arch, hardware), hardware)
    fix = None if result.fits else smallest_fix(arch, result.setup, hardware)
    problems = hardware_problems(spec, hardware)
    fit = _measured(args.measured, arch, result.setup, hardware) if args.measured else None
    if args.json:
        print(json.dumps({"hardware": hardware.label, "parameters": arch.params(), "trainable": result.setup.trainable,
                          "parts": result.parts, "total": result.total, "fits": result.fits,
                          "headroom": result.headroom, "fix": fix[0] if fix else None,
                          "problems": [{"where": w, "message": m} for w, m in problems],
                          **({"measured_largest_micro_batch": fit.micro_batch} if fit else {})}, indent=2))
    else:
        print(f"{arch.params():,} parameters, {result.setup.trainable:,} trainable")
        print(format_estimate(arch, result, hardware))
        if not result.fits:
            print(f"smallest change that fits: {fix[0]} ({fix[1].total / 2**30:.2f} GiB)" if fix
                  else "nothing zhouyi knows makes it fit: use more or larger GPUs")
        for where, message in problems:
            print(f"  problem: {where}: {message}")
        if fit is not None:
            print(describe(fit, hardware.card))
    return 0 if result.fits and not problems else 1


def _measured(report: str, arch, setup, hardware):
    """The largest micro-batch that fits, from a bench report's measured peaks (zhouyi.preflight.measured)."""
    import dataclasses

    from zhouyi.preflight.estimate import estimate
    from zhouyi.preflight.measured import largest_fitting, measured_points

    if hardware.card is None:
        raise UserError("--measured: name a GPU card with --hardware (the peaks are a card's)")
    points, too_big, settings = measured_points(Path(report), hardware.card)
    # a row's memory at the measured settings, zhouyi's estimate: the slope when one micro-batch was measured
    one = dataclasses.replace(setup, micro_batch=1, cutoff_len=settings["cutoff_len"],
                              checkpointing=settings["gradient_checkpointing"],
                              liger=settings["enable_liger_kernel"])
    row = estimate(arch, dataclasses.replace(one, micro_batch=2), hardware).total - estimate(arch, one, hardware).total
    return largest_fitting(points, too_big, hardware.card, row, report, settings)
