"""The one place zhouyi starts processes.

Every child runs in its own process group, so one signal reaches it and everything it started (torchrun and
its workers). While zhouyi waits, Ctrl-C, SIGTERM and SIGHUP are forwarded to that whole group; a group still
running ESCALATE_AFTER seconds later gets SIGTERM, then SIGKILL (a child may ignore SIGINT: anything a
non-interactive shell starts in the background does). What is left of the group when the child ends is killed.
Under nohup, SIGHUP stays ignored: the training is meant to outlive the terminal. Commands come from
zhouyi.launch, already whole: nothing here changes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from zhouyi.errors import Stopped, UserError
from zhouyi.launch import CLI, Command, child

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ESCALATION = (signal.SIGTERM, signal.SIGKILL)
ESCALATE_AFTER = 10.0  # seconds a signalled group has to stop before the next, harder signal
TimeoutExpired = subprocess.TimeoutExpired  # what capture() raises after its timeout


def run(cmd: Command, echo=print, log: Path | None = None, dry_run: bool = False,
        watch: Callable[[], str | None] | None = None) -> int:
    """Print `cmd`, run it and return its exit code (128+N when signal N ended it, or when the user's signal N
    stopped it); `dry_run` only prints.

    With `log`, the child's stdout and stderr go to that file instead of the terminal. With `watch`, called while
    the child runs: when it returns a reason (what the child depends on has died), the child is stopped and the
    reason raised as a UserError.
    """
    echo(f"run: {cmd.shell()}" + (f" > {log} 2>&1" if log else ""), flush=True)
    if dry_run:
        return 0
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    with open(log, "wb") if log else contextlib.nullcontext() as sink:
        proc = subprocess.Popen(argv, env=_child_env(cmd.env), cwd=cmd.cwd, stdout=sink,
                                stderr=subprocess.STDOUT if log else None, start_new_session=True)
        with _forwarding(proc) as forwarder:
            while (code := _poll(proc)) is None:
                forwarder.escalate()
                if watch is not None and (reason := watch()):
                    stop(proc)
                    raise UserError(reason)
    if forwarder.received is not None:
        return 128 + forwarder.received  # the user stopped it: exit as the signal, even if the child exited 0
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
    deadline = None if timeout is None else time.monotonic() + timeout
    with _forwarding(proc) as forwarder:
        while True:
            try:
                out, err = proc.communicate(stdin_text, timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                stdin_text = None  # communicate() sent it already; a second call only goes on reading
                if deadline is not None and time.monotonic() > deadline:
                    _kill_group(proc.pid)
                    proc.communicate()
                    raise subprocess.TimeoutExpired(argv, timeout) from None
                forwarder.escalate()
        forwarder.raise_received()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def call_child(job, what: str, env: dict[str, str] | None = None, timeout: float | None = None,
               stderr: bool = True):
    """Send `job` (a zhouyi.child.jobs.Job) to its child on stdin and return the child's typed answer; the child's
    error, or a death without an answer, is one UserError starting with `what`. Raises TimeoutExpired after
    `timeout` seconds, the child stopped (the caller words what took too long)."""
    from zhouyi.child.jobs import ANSWERS

    proc = capture(child(job.child, env=env), stdin_text=job.model_dump_json(), timeout=timeout, stderr=stderr)
    message = {}
    for line in reversed((proc.stdout or "").strip().splitlines()):
        if line.startswith("{"):
            try:
                message = json.loads(line)
                break
            except ValueError:
                continue  # a library's own log line that looks like JSON; the answer is the last one that is
    if not isinstance(message, dict):
        message = {}
    if "answer" in message:
        return ANSWERS[type(job)].model_validate(message["answer"])
    error = message.get("error") or f"it stopped with exit {proc.returncode} and no answer" + (
        f": {proc.stderr.strip()[-1000:]}" if proc.stderr and proc.stderr.strip() else "")
    raise UserError(f"{what}: {error[:2000]}")


class Conversation:
    """A child that makes several runs, one at a time: a JSON line on its stdin asks for one, a JSON line on its
    stdout answers (zhouyi.child.bench_probe --serve). While zhouyi waits, the user's signals reach the child's group
    as in run()."""

    def __init__(self, proc: subprocess.Popen, forwarder: _Forwarder):
        self.proc, self.forwarder = proc, forwarder

    def ask(self, message: dict) -> dict | None:
        """The child's answer; None when it ended without one. A signal the user sent meanwhile ends zhouyi as that
        signal once the child has answered or ended."""
        try:
            self.proc.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
            line = self._answer()
        except BrokenPipeError:
            line = ""
        self.forwarder.raise_received()
        try:
            return json.loads(line) if line.strip() else None
        except ValueError:
            return None

    def _answer(self) -> str:
        while not select.select([self.proc.stdout], [], [], 0.2)[0]:
            self.forwarder.escalate()
        return self.proc.stdout.readline()


@contextlib.contextmanager
def conversation(cmd: Command, echo=print) -> Iterator[Conversation]:
    """Start `cmd` (a child that serves runs, see Conversation) for the block; its stderr is the user's terminal.
    On the way out its stdin is closed and it ends; nothing of its group is left running."""
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    echo(f"run: {cmd.shell()}", flush=True)
    proc = subprocess.Popen(argv, env=_child_env(cmd.env), cwd=cmd.cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    with _forwarding(proc) as forwarder:
        try:
            yield Conversation(proc, forwarder)
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(ESCALATE_AFTER)
            proc.stdout.close()


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


def _poll(proc: subprocess.Popen, interval: float = 0.2) -> int | None:
    try:
        return proc.wait(interval)
    except subprocess.TimeoutExpired:
        return None


class _Forwarder:
    """Passes the signals zhouyi gets on to the child's group, and hardens them when the group does not stop."""

    def __init__(self, pgid: int):
        self.pgid = pgid
        self.signalled_at: float | None = None
        self.received: int | None = None  # the first signal the user sent: zhouyi ends by it too
        self.escalations = iter(ESCALATION)

    def forward(self, signum, _frame) -> None:
        _signal_group(self.pgid, signum)
        self.signalled_at = self.signalled_at or time.monotonic()
        self.received = self.received or signum

    def raise_received(self) -> None:
        """After the child stopped: a signal the user sent ends zhouyi as that signal (exit 128+N), whatever the
        child answered on its way out."""
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is not None:
            raise Stopped(self.received)

    def escalate(self) -> None:
        if self.signalled_at is not None and time.monotonic() - self.signalled_at > ESCALATE_AFTER:
            _signal_group(self.pgid, next(self.escalations, signal.SIGKILL))
            self.signalled_at = time.monotonic()


@contextlib.contextmanager
def _forwarding(proc: subprocess.Popen) -> Iterator[_Forwarder]:
    """While the block runs, Ctrl-C / SIGTERM / SIGHUP (unless nohup ignores it) go to the child's whole group;
    after it, nothing of the group is left running."""
    forwarder = _Forwarder(proc.pid)
    nohup = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    previous = {sig: signal.signal(sig, forwarder.forward) for sig in FORWARDED
                if not (sig == signal.SIGHUP and nohup)}
    try:
        yield forwarder
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _kill_group(proc.pid)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _kill_group(pgid: int) -> None:
    """Leave no stray worker behind: anything still in the child's group gets SIGKILL."""
    _signal_group(pgid, signal.SIGKILL)
