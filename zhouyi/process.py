"""The one place zhouyi starts processes.

Every child runs in its own process group, so one signal reaches it and everything it started (torchrun and
its workers). While zhouyi waits, Ctrl-C, SIGTERM and SIGHUP are forwarded to that whole group; what is left
of the group when the child ends is killed. Commands come from zhouyi.launch, already whole: nothing here
changes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.launch import CLI, Command

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TimeoutExpired = subprocess.TimeoutExpired  # what capture() raises after its timeout


def run(cmd: Command, echo=print, log: Path | None = None, dry_run: bool = False) -> int:
    """Print `cmd`, run it and return its exit code (128+N when signal N ended it); `dry_run` only prints.

    With `log`, the child's stdout and stderr go to that file instead of the terminal.
    """
    echo(f"run: {cmd.shell()}" + (f" > {log} 2>&1" if log else ""), flush=True)
    if dry_run:
        return 0
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    with open(log, "wb") if log else contextlib.nullcontext() as sink:
        proc = subprocess.Popen(argv, env=_child_env(cmd.env), cwd=cmd.cwd, stdout=sink,
                                stderr=subprocess.STDOUT if log else None, start_new_session=True)
        with _forwarding(proc):
            code = proc.wait()
    return code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as a shell reports it


def capture(cmd: Command, stdin_text: str | None = None, timeout: float | None = None,
            stderr: bool = True) -> subprocess.CompletedProcess:
    """Run a helper whose answer zhouyi reads (not shown to the user): its stdout, and its stderr unless
    `stderr=False` lets it through to the terminal (a download's progress). Raises TimeoutExpired after
    `timeout` seconds, with the helper's group stopped."""
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    proc = subprocess.Popen(argv, env=_child_env(cmd.env), cwd=cmd.cwd, text=True, start_new_session=True,
                            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE if stderr else None)
    with _forwarding(proc):
        try:
            out, err = proc.communicate(stdin_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def start(cmd: Command, log: Path, echo=print) -> subprocess.Popen:
    """Start `cmd` in the background (a server), output to `log`; `stop()` ends it."""
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    echo(f"run: {cmd.shell()} > {log} 2>&1 &", flush=True)
    with open(log, "wb") as sink:
        return subprocess.Popen(argv, env=_child_env(cmd.env), cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the background command's group, SIGKILL what is left after `grace` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    _kill_group(proc.pid)
    proc.wait()


def resolve_executable(name: str) -> str:
    """Find `name` on PATH, or beside the running Python (a venv whose bin/ is not on PATH)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        hint = "install llamafactory (make install) or activate its venv" if name == CLI else "install it"
        raise UserError(f"'{name}' not found on PATH; {hint}")
    return found


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a command's log, for an error message."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment plus `extra`, with this Python's bin folder first on PATH: LLaMA-Factory
    starts `torchrun` by name, which a venv that is not activated would not otherwise provide."""
    env = {**os.environ, **extra}
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


@contextlib.contextmanager
def _forwarding(proc: subprocess.Popen) -> Iterator[None]:
    """While the block runs, Ctrl-C / SIGTERM / SIGHUP go to the child's whole group; after it, nothing of the
    group is left running."""

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _kill_group(proc.pid)


def _kill_group(pgid: int) -> None:
    """Leave no stray worker behind: anything still in the child's group gets SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
