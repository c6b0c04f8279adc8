"""Run LLaMA-Factory's own argument parser on rendered YAML files, with no GPU and no model download.

Started by zhouyi.preflight.validate (job and answer: zhouyi.child.jobs.LfCheck). llamafactory is imported once;
every file is parsed in a freshly forked child, because the library mutates global state while parsing.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import LfCheck

# Checked by zhouyi itself, against the spec's hardware: these need a GPU or a distributed launch.
HARDWARE_KEYS = ("bf16", "fp16", "pure_bf16", "deepspeed")


def _parse(job: dict) -> tuple[str, list[str]]:
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams.parser import get_infer_args, get_train_args
    from omegaconf import OmegaConf

    errors: list[str] = []
    try:
        args = OmegaConf.to_container(OmegaConf.load(job["path"]))
    except Exception as exc:  # noqa: BLE001 - report any load failure as a finding
        return job["id"], [f"cannot load: {exc}"]
    template = args.get("template")
    if template is not None and template not in TEMPLATES:
        errors.append(f"unknown template '{template}' (llamafactory knows e.g. qwen, qwen3, llama3, chatml)")
    for key in HARDWARE_KEYS:
        args.pop(key, None)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            (get_train_args if job["kind"] == "train" else get_infer_args)(args)
    except (ValueError, TypeError, KeyError) as exc:
        errors.append(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
    except SystemExit as exc:
        errors.append(f"llamafactory exited ({exc.code}): {sink.getvalue().strip()[-500:]}")
    return job["id"], errors


def check(job: LfCheck) -> dict:
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")
    import llamafactory.hparams.parser  # noqa: F401 - import once, before forking
    from llamafactory.data.template import TEMPLATES  # noqa: F401

    configs = [c.model_dump() for c in job.configs]
    ctx = multiprocessing.get_context("fork")
    workers = max(1, min(len(configs), os.cpu_count() or 1))
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        return {"errors": dict(pool.map(_parse, configs, chunksize=1))}


if __name__ == "__main__":
    sys.exit(serve(LfCheck, check))
