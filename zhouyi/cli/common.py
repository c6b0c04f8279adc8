"""What the verb modules share: making a verb's parser, the SPEC / --run / --set flags, and finding the spec or
the trained run a verb works on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zhouyi.errors import UserError


def verb(sub, name: str, func, help_text: str) -> argparse.ArgumentParser:
    """A subcommand whose handler is `func(args) -> exit code`."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    return p


def spec_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("spec", nargs="?" if optional else None, help="a spec file or a preset name")
    set_flag(p)


def set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                   help="override one spec value, type-checked (repeatable), e.g. --set train.learning_rate=2e-4")


def run_args(p: argparse.ArgumentParser) -> None:
    """SPEC (its latest finished run) or --run DIR: which trained model a verb uses."""
    spec_args(p, optional=True)
    p.add_argument("--run", help="run directory (default: the latest finished run of SPEC)")


def dry_run_flag(p: argparse.ArgumentParser, what: str = "print the command; run nothing") -> None:
    p.add_argument("--dry-run", action="store_true", help=what)


def load_spec(args):
    """The verb's SPEC with `base:` resolved and --set applied (a zhouyi.load.LoadedSpec)."""
    from zhouyi.load import load

    return load(args.spec, args.set or ())


def optional_spec(args):
    """The verb's --spec as a JobSpec, or None when none is given; --set without --spec is refused, since there is no
    spec for it to change (it was silently ignored once)."""
    if args.spec:
        return load_spec(args).spec
    if getattr(args, "set", None):
        key = args.set[0].split("=", 1)[0]  # never the value: it may hold a secret
        raise UserError(f"--set {key}=… changes a spec, and no --spec is given: add --spec SPEC (e.g. --spec "
                        "zhougong-lora), or use this command's own flags")
    return None


def run_for(args):
    """(the spec a run recorded, with --set on what may change after training, and its folder): --run DIR, or the
    latest finished run of SPEC."""
    from zhouyi.runs import check_run, latest_trained_run, recorded_spec

    if args.run:
        run_dir = check_run(Path(args.run))
    elif not args.spec:
        raise UserError("say which model: SPEC (its latest finished run) or --run DIR")
    else:
        from zhouyi.load import load

        run_dir = latest_trained_run(load(args.spec).spec, Path.cwd())  # --set is for the run's spec, below
    spec = recorded_spec(run_dir, args.set or ())
    if args.set:
        print(f"using {run_dir.name}'s recorded spec with --set {' --set '.join(args.set)}", file=sys.stderr)
    return spec, run_dir
