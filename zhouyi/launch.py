"""The one place zhouyi starts processes.

`build()` is pure (spec + run dir -> argv, env, cwd); `run()` prints the exact command, runs it in its
own process group, forwards Ctrl-C / SIGTERM to that whole group, and returns the child's exit code.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.spec import JobSpec

VERB_FILES = {"train": "train.yaml", "predict": "predict.yaml", "predict_base": "predict_base.yaml",
              "chat": "infer.yaml", "api": "infer.yaml", "webchat": "infer.yaml", "export": "export.yaml",
              "quantize": "quantize.yaml"}
LF_VERBS = {"predict": "train", "predict_base": "train", "quantize": "export"}  # zhouyi verb -> llamafactory-cli
CLI = "llamafactory-cli"
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # set on top of the caller's environment
    cwd: str = "."

    def shell(self) -> str:
        """The command as one line a user can paste into a shell (secrets masked)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(redact(self.env).items()))
        return f"cd {shlex.quote(self.cwd)} && " + (env + " " if env else "") + shlex.join(self.argv)


def redact(env: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if any(m in k.upper() for m in SECRET_MARKERS) else v) for k, v in env.items()}


def launch_env(spec: JobSpec, node_rank: int | None = None) -> dict[str, str]:
    """Environment for LLaMA-Factory's launcher: devices, torchrun topology, model hub."""
    launch = spec.launch
    env: dict[str, str] = {}
    if launch.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif launch.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in launch.gpus)
    if launch.engine == "ray":
        env["USE_RAY"] = "1"
    if launch.distributed:
        env["FORCE_TORCHRUN"] = "1"
        env["NPROC_PER_NODE"] = str(launch.processes_per_node)
        env["NNODES"] = str(launch.nnodes)
        env["NODE_RANK"] = str(launch.node_rank if node_rank is None else node_rank)
        if launch.master_addr:
            env["MASTER_ADDR"] = launch.master_addr
        if launch.master_port:
            env["MASTER_PORT"] = str(launch.master_port)
    if spec.model.source == "modelscope":
        env["USE_MODELSCOPE_HUB"] = "1"
    return env


def build(spec: JobSpec, verb: str, run_dir: Path, node_rank: int | None = None) -> Command:
    """The command for `verb` on the files rendered into `run_dir`. Pure: nothing is read or run."""
    if verb not in VERB_FILES:
        raise ValueError(f"unknown verb {verb!r}")
    config = str(Path(run_dir) / VERB_FILES[verb])
    lf_verb = LF_VERBS.get(verb, verb)
    env = launch_env(spec, node_rank) if verb == "train" else single_process_env(spec)
    return Command([CLI, lf_verb, config], env, str(run_dir))


def single_process_env(spec: JobSpec) -> dict[str, str]:
    env = {k: v for k, v in launch_env(spec).items() if k in ("CUDA_VISIBLE_DEVICES", "USE_MODELSCOPE_HUB")}
    if spec.launch.device == "cuda" and spec.launch.gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(spec.launch.gpus[0])  # chat/export/predict use one device
    return env


def resolve_executable(name: str) -> str:
    """Find `name` on PATH, or beside the running Python (a venv whose bin/ is not on PATH)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise UserError(f"'{name}' not found on PATH; install llamafactory (make install) or activate its venv")
    return found


def run(cmd: Command, stdin_text: str | None = None, echo=print, log: Path | None = None) -> int:
    """Run `cmd`, print it first, forward SIGINT/SIGTERM to its whole process group, return its exit code.

    With `log`, the child's stdout and stderr go to that file instead of the terminal.
    """
    argv = [resolve_executable(cmd.argv[0]), *cmd.argv[1:]]
    echo(f"run: {cmd.shell()}" + (f" > {log} 2>&1" if log else ""), flush=True)
    with open(log, "wb") if log else open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(
            argv,
            env=_child_env(cmd.env),
            cwd=cmd.cwd,
            stdin=subprocess.PIPE if stdin_text is not None else None,
            stdout=sink if log else None,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,  # its own group, so one signal reaches torchrun and every worker
        )
        return _wait(proc, stdin_text)


def start(cmd: Command, log: Path, echo=print) -> subprocess.Popen:
    """Start `cmd` in the background (a server), in its own process group, output to `log`; `stop()` ends it."""
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
    _reap_group(proc.pid)
    proc.wait()


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


def _wait(proc: subprocess.Popen, stdin_text: str | None) -> int:
    """Wait for `proc`, forwarding Ctrl-C / SIGTERM to its group; the exit code as a shell reports it."""

    def forward(signum, _frame):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if stdin_text is not None:
            try:
                proc.stdin.write(stdin_text.encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _reap_group(proc.pid)
    return code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as a shell reports it


def _reap_group(pgid: int) -> None:
    """Leave no stray worker behind: anything still in the child's group gets SIGKILL."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
