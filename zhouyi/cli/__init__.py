"""`zhouyi` command line. Each module here is one family of verbs, its flags beside its handlers; a handler parses,
calls the library and prints. SPEC is a spec file path or a packaged preset name everywhere. User errors exit 2
with a message that names the field or file; a launched llamafactory-cli's exit code is passed through.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Iterator

from zhouyi import __version__
from zhouyi.cli import bench, data, evaluate, export, model, preflight, runs, serve, spec, train
from zhouyi.errors import USER_ERROR_EXIT, Stopped, UserError

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
        with stopping_on_signals():
            return args.func(args)
    except UserError as exc:
        print(f"zhouyi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Stopped as exc:
        return 128 + exc.signum
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
