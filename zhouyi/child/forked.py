"""One run in a forked copy of this process, its output into a log: for children that import LLaMA-Factory once (7
to 10 seconds here) and then make several runs of it (an evaluation's askings, a benchmark's rungs), each from a
fresh copy of the imported state, since a run changes LLaMA-Factory's globals (its template registry keeps the last
default_system). Where such a copy would not be safe (the imports initialised CUDA), the copy execs a fresh Python.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def before_imports() -> None:
    """Call before importing LLaMA-Factory: it asks torch at import whether a GPU is there, and torch's default check
    (the CUDA runtime's device count) initialises the CUDA driver, after which a forked copy cannot use the GPU
    ("CUDA initialization error"). With this torch asks NVML instead, as its documentation advises for forks."""
    os.environ.setdefault(NVML_CHECK, "1")


def copy_is_safe() -> bool:
    """Whether a forked copy may use the GPU: torch checked for one through NVML (before_imports; a user's own
    setting of 0 is kept, and then each run execs instead), and CUDA is not initialised."""
    import torch

    return os.environ.get(NVML_CHECK) == "1" and not torch.cuda.is_initialized()


def run(target: Callable[[], object], log: str, cwd: str, fresh_argv: list[str] | None = None) -> int:
    """`target()` in a forked copy (or, with `fresh_argv`, `python *fresh_argv` exec'd there), its stdout and stderr
    into `log`, in `cwd`; its exit code, 128+N when signal N ended it, as a shell reports it. A Ctrl-C reaches the
    run too (one process group): this waits for the run to end and returns how it ended."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _in_the_copy(target, log, cwd, fresh_argv)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except KeyboardInterrupt:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _in_the_copy(target: Callable[[], object], log: str, cwd: str, fresh_argv: list[str] | None) -> None:
    """Never returns: the copy ends with the run's exit code, a failure's traceback in the log as Python shows it."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        nothing = os.open(os.devnull, os.O_RDONLY)  # the parent's stdin carries its jobs, not the run's
        os.dup2(nothing, 0)
        os.close(nothing)
        os.chdir(cwd)
        if fresh_argv is not None:
            os.execv(sys.executable, [sys.executable, *fresh_argv])
        target()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - shown in the run's log, as the script would show it
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
