"""Several `llamafactory-cli` runs (an evaluation's predictions) from one import of LLaMA-Factory.

Importing LLaMA-Factory takes 7 to 10 seconds here, and `zhouyi eval` asks up to six times (base and tuned, each
again without the system prompt, and the forgetting check's two). This child imports it once, then runs LLaMA-
Factory's own CLI entry point, `llamafactory.cli.main`, on each asking's arguments in a forked copy
(zhouyi.child.forked): what the `llamafactory-cli` script runs, torchrun included where its launcher chooses it.
Job and answer: zhouyi.child.jobs.LfAskings.
"""

from __future__ import annotations

import sys

from zhouyi.child import forked
from zhouyi.child.contract import serve
from zhouyi.child.jobs import CliRun, LfAskings
from zhouyi.launch import CLI


def _cli(asking: CliRun) -> None:
    from llamafactory.cli import main

    sys.argv = [CLI, *asking.args]
    main()


def ask(job: LfAskings) -> dict:
    forked.before_imports()
    import llamafactory.cli  # noqa: F401 - the import every asking would pay
    import llamafactory.train.tuner  # noqa: F401

    safe = forked.copy_is_safe()
    codes = []
    for asking in job.askings:
        codes.append(forked.run(lambda asking=asking: _cli(asking), asking.log, asking.cwd,
                                None if safe else ["-m", "llamafactory.cli", *asking.args]))
        if codes[-1] != 0:
            break
    return {"codes": codes}


if __name__ == "__main__":
    sys.exit(serve(LfAskings, ask))
