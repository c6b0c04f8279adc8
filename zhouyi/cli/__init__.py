"""`zhouyi` command line. Each module here is one family of verbs, its flags beside its handlers; a handler parses,
calls the library and prints. SPEC is a spec file path or a packaged preset name everywhere. User errors exit 2
with a message that names the field or file; a launched llamafactory-cli's exit code is passed through.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import os
import signal
import sys
from collections.abc import Iterator

from zhouyi import __version__
from zhouyi.cli import bench, data, evaluate, export, model, preflight, runs, serve, spec, train
from zhouyi.errors import USER_ERROR_EXIT, Stopped, UserError

FAMILIES = (spec, preflight, model, train, runs, evaluate, serve, export, bench, data)


class Parser(argparse.ArgumentParser):
    """argparse with a did-you-mean for a mistyped flag (each verb's parser is one too, so the usage shown is the
    verb's own)."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments: "):
            known = [o for action in self._actions for o in action.option_strings]
            hints = [f"{word} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(
                word.split("=")[0], known, n=1)) else word for word in message.split(": ", 1)[1].split()]
            message = "unrecognized arguments: " + " ".join(hints)
        super().error(message)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with a verb's flags allowed between its positionals (`ask SPEC --set k=v QUESTION`): the
    verb's own parser (`data clean`'s for `data clean ...`) reads its part intermixed, and names its own usage."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen: dict[str, str] = {}
    leaf, depth = parser, 0
    while (subs := _subcommands(leaf)) is not None and depth < len(argv) and argv[depth] in subs.choices:
        chosen[subs.dest] = argv[depth]
        leaf, depth = subs.choices[argv[depth]], depth + 1
    if leaf is parser or _subcommands(leaf) is not None:
        return parser.parse_args(argv)  # no verb yet (or --help, --version): argparse says what is missing
    args = leaf.parse_intermixed_args(argv[depth:])
    for dest, name in chosen.items():
        setattr(args, dest, name)
    return args


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="zhouyi",
        description="Typed specs -> LLaMA-Factory configs -> llamafactory-cli. SPEC is a spec file or a preset name.",
    )
    parser.add_argument("--version", action="version", version=f"zhouyi {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for family in FAMILIES:
        family.add_verbs(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        with stopping_on_signals():
            return args.func(args)
    except UserError as exc:
        print(f"zhouyi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Stopped as exc:
        return 128 + exc.signum
    except RecursionError:  # the last net under every reader of a user's file: input nested past any use
        print("zhouyi: error: an input file is nested too deep to read (thousands of levels of brackets or "
              "indentation); check the files this command was given", file=sys.stderr)
        return USER_ERROR_EXIT
    except BrokenPipeError:  # `zhouyi diff A B | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" (writing {exc.filename})" if exc.filename else ""
            print(f"zhouyi: error: no space left on the device{where}; nothing half-written was kept. Free some "
                  "space, or write elsewhere, and run it again", file=sys.stderr)
            return USER_ERROR_EXIT
        if exc.filename is None:
            raise
        # a place the user pointed at that cannot be read or written: a folder that is a file, no permission
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        print(f"zhouyi: error: {where}: {exc.strerror}; check the path and its permissions", file=sys.stderr)
        return USER_ERROR_EXIT


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind zhouyi as Ctrl-C does (Python's default would end it on the spot and leave a
    server it started running). A SIGHUP that nohup ignores stays ignored."""
    def stop(signum, _frame):
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
