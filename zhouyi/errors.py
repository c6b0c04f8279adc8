"""User-facing errors: one exception type the CLI turns into a clear message and exit code 2."""

from __future__ import annotations

USER_ERROR_EXIT = 2


class UserError(Exception):
    """Something the user can fix (bad spec, missing file, refused overwrite): exit 2, no traceback."""

    exit_code = USER_ERROR_EXIT


class SpecError(UserError):
    """Every problem found in one spec, each as (field path, message), reported together."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"spec error at '{path}': {msg}" if path else f"spec error: {msg}" for path, msg in problems]
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join("  " + line for line in lines))


class Stopped(BaseException):
    """SIGTERM or SIGHUP reached zhouyi itself: unwind like Ctrl-C, so every `finally` stops what it started
    (a private server, a temp folder), then exit 128+signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
