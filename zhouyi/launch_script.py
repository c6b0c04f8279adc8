"""Per-node launch scripts for a multi-node job: a plain script run on each node with its rank, or a
Slurm batch script (one task a node, MASTER_ADDR from the first host, NODE_RANK from SLURM_NODEID).

Both start the same `llamafactory-cli train` on the run's rendered train.yaml as `zhouyi train` does,
with the environment `zhouyi.launch` builds; only NODE_RANK (and under Slurm MASTER_ADDR) differs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from zhouyi.launch import Command
from zhouyi.render import _env
from zhouyi.spec import JobSpec

SCRIPTS = {"shell": ("launch/node.sh.j2", "launch-node.sh"), "slurm": ("launch/slurm.sbatch.j2", "launch.sbatch")}


def render_script(kind: str, spec: JobSpec, cmd: Command, run_dir: Path) -> tuple[str, str]:
    """(file name, text) of the `kind` script for the train command `cmd`."""
    template, name = SCRIPTS[kind]
    dropped = ("NODE_RANK", "MASTER_ADDR") if kind == "slurm" else ("NODE_RANK",)
    env = {k: v for k, v in sorted(cmd.env.items()) if k not in dropped}
    jinja = _env().overlay()
    jinja.filters["q"] = lambda value: shlex.quote(str(value))
    jinja.filters["qjoin"] = lambda argv: shlex.join(str(a) for a in argv)
    text = jinja.get_template(template).render(
        spec=spec, launch=spec.launch, env=env, argv=cmd.argv, run_dir=str(run_dir), script_name=name,
        bin_dir=str(Path(sys.executable).parent), master_addr=spec.launch.master_addr or "its master_addr",
    )
    return name, text
