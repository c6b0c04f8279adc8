"""`zhouyi doctor [SPEC]`: what this machine has, and whether it can run a spec (and what to change if not)."""

from __future__ import annotations

import importlib.util
import platform
import shutil
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from zhouyi.errors import UserError
from zhouyi.packages import dist_version
from zhouyi.preflight.hardware import Card, Hardware

LF_NEEDS = ("transformers", "datasets", "peft", "trl", "accelerate")
OPTIONAL = ("deepspeed", "flash_attn", "liger_kernel", "bitsandbytes", "ray")
GIB = 2**30


def detect_hardware() -> tuple[Hardware, list[dict]]:
    """This machine's GPUs as a hardware profile (the first card's kind), and each GPU's facts."""
    import torch

    from zhouyi.speed.flops import peak_tflops

    if not torch.cuda.is_available():
        return Hardware(0, None), []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"name": props.name, "memory_gib": round(props.total_memory / GIB, 1),
                     "bf16": torch.cuda.is_bf16_supported(), "capability": f"{props.major}.{props.minor}"})
    first = gpus[0]
    card = Card(first["name"], first["memory_gib"], first["bf16"], peak_tflops(first["name"]) or 0.0)
    return Hardware(len(gpus), card), gpus


def environment() -> tuple[dict, Hardware]:
    """This machine's facts (JSON-ready) and its GPUs as a hardware profile."""
    import torch

    lf_requires = {Requirement(r).name: Requirement(r) for r in metadata.requires("llamafactory") or []
                   if "extra ==" not in r}
    needs = {}
    for name in LF_NEEDS:
        installed, req = dist_version(name), lf_requires.get(name)
        ok = installed is not None and (req is None or req.specifier.contains(installed, prereleases=True))
        needs[name] = {"installed": installed, "llamafactory_wants": str(req.specifier) if req else None, "ok": ok}
    hardware, gpus = detect_hardware()
    disk = shutil.disk_usage(Path.cwd())
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": gpus,
        "llamafactory": dist_version("llamafactory"),
        "llamafactory_needs": needs,
        "optional": {name: importlib.util.find_spec(name) is not None for name in OPTIONAL},
        "free_disk_gib": round(disk.free / GIB, 1),
    }, hardware


def spec_problems(spec, env: dict, hardware: Hardware, base_dir: Path) -> list[str]:
    """What stops `spec` here, each with the change that fixes it."""
    from zhouyi.preflight.estimate import arch_for, memory_problem
    from zhouyi.preflight.hardware import hardware_problems

    problems = []
    if spec.launch.device == "cuda" and hardware.card is None:
        problems.append("launch.device is cuda but this machine has no CUDA GPU: run it on a GPU machine, or "
                        "--set launch.device=cpu --set train.precision=fp32 (slow)")
    else:
        problems += [f"{where}: {message}" for where, message in hardware_problems(spec, hardware)]
    if spec.train.enable_liger_kernel and not env["optional"]["liger_kernel"]:
        problems.append("train.enable_liger_kernel: liger-kernel is not installed (pip install liger-kernel)")
    if spec.launch.deepspeed != "none" and not env["optional"]["deepspeed"]:
        problems.append("launch.deepspeed: deepspeed is not installed (pip install deepspeed)")
    if spec.train.flash_attn == "fa2" and not env["optional"]["flash_attn"]:
        problems.append("train.flash_attn: fa2 needs flash-attn, which is not installed; use sdpa")
    bad = [f"{n} {v['installed']} (llamafactory wants {v['llamafactory_wants']})"
           for n, v in env["llamafactory_needs"].items() if not v["ok"]]
    if bad:
        problems.append("packages outside llamafactory's range: " + ", ".join(bad))
    if hardware.card is not None:
        try:
            arch = arch_for(spec, base_dir)
        except UserError:  # no config to estimate from: say nothing about memory or disk
            return problems
        weights_gib = arch.params() * 2 / GIB
        if env["free_disk_gib"] < weights_gib * 2:
            problems.append(f"about {weights_gib * 2:.0f} GiB of disk needed for the model and a merged export, "
                            f"{env['free_disk_gib']} GiB free here")
        memory = memory_problem(arch, spec, hardware)
        if memory:
            problems.append(f"memory: {memory}")
    return problems
