"""`zhouyi` command line. Each module here is one family of verbs, its flags beside its handlers; a handler parses,
calls the library and prints. SPEC is a spec file path or a packaged preset name everywhere. User errors exit 2
with a message that names the field or file; a launched llamafactory-cli's exit code is passed through.
"""

from __future__ import annotations

import argparse
import os
import sys

from zhouyi import __version__
from zhouyi.cli import bench, data, evaluate, export, model, preflight, runs, serve, spec, train
from zhouyi.errors import UserError

FAMILIES = (spec, preflight, model, train, runs, evaluate, serve, export, bench, data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhouyi",
        description="Typed specs -> LLaMA-Factory configs -> llamafactory-cli. SPEC is a spec file or a preset name.",
    )
    parser.add_argument("--version", action="version", version=f"zhouyi {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for family in FAMILIES:
        family.add_verbs(sub)
    return parser


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
