"""Several `llamafactory-cli` runs (an evaluation's predictions) from one import of LLaMA-Factory.

Importing LLaMA-Factory takes 7 to 10 seconds here, and `zhouyi eval` asks up to six times (base and tuned, each
again without the system prompt, and the forgetting check's two). This child imports it once, then forks a child per
asking that runs LLaMA-Factory's own CLI entry point, `llamafactory.cli.main`, on the asking's arguments: what the
`llamafactory-cli` script runs, torchrun included where its launcher chooses it, from a fresh copy of the imported
state (a run mutates LLaMA-Factory's globals: its template registry keeps the last default_system). Where the
forked copy would not be safe (CUDA initialised by the import), the forked child execs the script instead.
Job and answer: zhouyi.child.jobs.LfAskings.
"""

from __future__ import annotations

import os
import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import CliRun, LfAskings
from zhouyi.launch import CLI


def _run(asking: CliRun, forkable: bool) -> None:
    """In the forked child: the asking's output into its log, then LLaMA-Factory's CLI; never returns."""
    code = 1
    try:
        fd = os.open(asking.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.chdir(asking.cwd)
        if not forkable:
            os.execv(sys.executable, [sys.executable, "-m", "llamafactory.cli", *asking.args])  # the script's main
        from llamafactory.cli import main

        sys.argv = [CLI, *asking.args]
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - shown in the asking's log, as the script would show it
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def ask(job: LfAskings) -> dict:
    import llamafactory.cli  # noqa: F401 - the import every asking would pay
    import llamafactory.train.tuner  # noqa: F401
    import torch

    forkable = not torch.cuda.is_initialized()
    codes = []
    for asking in job.askings:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run(asking, forkable)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        codes.append(code if code >= 0 else 128 - code)
        if code != 0:
            break
    return {"codes": codes}


if __name__ == "__main__":
    sys.exit(serve(LfAskings, ask))
