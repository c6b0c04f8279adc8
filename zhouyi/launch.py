"""Every command zhouyi runs, built whole: argv, environment and working folder. Pure: nothing is read or run here
(zhouyi.process runs them).

`build()` makes the `llamafactory-cli` command of a verb on the files rendered into a run, with the launcher
environment the spec's `launch:` section asks for; `child()` makes a `python -m zhouyi.child.X` helper.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.layout import VERB_FILES
from zhouyi.spec import JobSpec

CLI = "llamafactory-cli"
# the llamafactory-cli verb where it differs from zhouyi's (the rendered file of each: layout.VERB_FILES)
LF_VERBS = {"predict": "train", "predict_base": "train", "quantize": "export"}
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


def build(spec: JobSpec, verb: str, run_dir: Path, *, node_rank: int | None = None, config: str | None = None,
          args: tuple[str, ...] | list[str] = (), env: dict[str, str] | None = None) -> Command:
    """`llamafactory-cli` for `verb` in `run_dir`, on the verb's rendered file (or `config`, another file there),
    followed by `args` (LLaMA-Factory's key=value overrides), with `env` on top of the launcher's environment."""
    if verb not in VERB_FILES:
        raise ValueError(f"unknown verb {verb!r}")
    file = config or VERB_FILES[verb]
    argv = [CLI, LF_VERBS.get(verb, verb), *([str(Path(run_dir) / file)] if file else []), *args]
    base_env = launch_env(spec, node_rank) if verb == "train" else single_process_env(spec)
    return Command(argv, base_env | (env or {}), str(run_dir))


def child(module: str, *args: str, env: dict[str, str] | None = None, cwd: Path | str = ".") -> Command:
    """`python -m zhouyi.child.<module>`: a helper that imports what zhouyi itself must not (torch, llamafactory,
    a hub client), in this same Python."""
    return python_module(f"zhouyi.child.{module}", *args, env=env, cwd=cwd)


def python_module(module: str, *args: str, env: dict[str, str] | None = None, cwd: Path | str = ".") -> Command:
    """`python -m <module>` in this same Python (a child helper, the API gate)."""
    return Command([sys.executable, "-m", module, *args], env or {}, str(cwd))


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


def single_process_env(spec: JobSpec) -> dict[str, str]:
    """chat, api, export, predict and the smoke test use one device: the first of the spec's GPUs."""
    env = {k: v for k, v in launch_env(spec).items() if k in ("CUDA_VISIBLE_DEVICES", "USE_MODELSCOPE_HUB")}
    if spec.launch.device == "cuda" and spec.launch.gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(spec.launch.gpus[0])
    return env
