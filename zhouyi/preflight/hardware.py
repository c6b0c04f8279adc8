"""Hardware profiles as typed input (`--hardware 4x4090`), so checks and estimates need no GPU.

Memory is what the card reports to CUDA; peak TFLOP/s is dense bf16 (fp16 where the card has no bf16)
from the vendors' datasheets, the same table `zhouyi bench` computes MFU against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhouyi.errors import UserError


@dataclass(frozen=True)
class Card:
    name: str
    memory_gib: float
    bf16: bool
    peak_tflops: float


CARDS: dict[str, Card] = {
    "h200": Card("NVIDIA H200", 139.8, True, 989.0),
    "h100": Card("NVIDIA H100 80GB HBM3", 79.6, True, 989.0),
    "a100-80g": Card("NVIDIA A100 80GB", 79.2, True, 312.0),
    "a100-40g": Card("NVIDIA A100 40GB", 39.4, True, 312.0),
    "4090": Card("NVIDIA GeForce RTX 4090", 23.6, True, 165.0),
    "3090": Card("NVIDIA GeForce RTX 3090", 23.6, True, 71.0),
    "v100": Card("Tesla V100 32GB", 31.7, False, 125.0),
    "t4": Card("Tesla T4", 14.6, False, 65.0),
}


@dataclass(frozen=True)
class Hardware:
    count: int  # GPUs per node; 0 for cpu
    card: Card | None

    @property
    def label(self) -> str:
        return "cpu" if self.card is None else f"{self.count}x {self.card.name}"


def parse_hardware(text: str) -> Hardware:
    """`cpu`, `h100` (one card) or `<count>x<card>`, e.g. `4x4090`, `8xa100-80g`."""
    value = text.strip().lower()
    if value == "cpu":
        return Hardware(0, None)
    match = re.fullmatch(r"(?:(\d+)x)?([a-z0-9-]+)", value)
    if not match or match.group(2) not in CARDS or (match.group(1) is not None and int(match.group(1)) < 1):
        raise UserError(f"--hardware {text!r}: expected cpu or <count>x<card>, cards: {', '.join(CARDS)}")
    return Hardware(int(match.group(1) or 1), CARDS[match.group(2)])


def hardware_problems(spec, hardware: Hardware) -> list[tuple[str, str]]:
    """What stops `spec` on `hardware`, each at the spec field to change (`spec` is a zhouyi.spec.JobSpec)."""
    launch, train = spec.launch, spec.train
    problems = []
    if hardware.card is None:
        if launch.device == "cuda":
            problems.append(("launch.device", "the hardware is cpu but launch.device is cuda; set device: cpu"))
        return problems
    if launch.device == "cpu":
        problems.append(("launch.device", f"launch.device is cpu on {hardware.label}; set device: cuda"))
    if launch.gpus and max(launch.gpus) >= hardware.count:
        problems.append(("launch.gpus", f"gpu id {max(launch.gpus)} does not exist on {hardware.label} "
                                        f"(ids 0-{hardware.count - 1})"))
    if launch.nproc_per_node and launch.nproc_per_node > hardware.count:
        problems.append(("launch.nproc_per_node", f"{launch.nproc_per_node} processes but {hardware.count} GPU(s)"))
    if train.precision == "bf16" and not hardware.card.bf16:
        problems.append(("train.precision", f"{hardware.card.name} has no bf16; use fp16"))
    zero3 = launch.deepspeed.startswith("zero3")
    if zero3 and spec.overrides.get("use_unsloth"):
        problems.append(("overrides.use_unsloth", "unsloth does not work with DeepSpeed ZeRO-3; use zero2"))
    if zero3 and spec.overrides.get("pure_bf16"):
        problems.append(("overrides.pure_bf16", "pure_bf16 does not work with DeepSpeed ZeRO-3; use zero2"))
    # ZeRO-3 with predict_with_generate cannot happen: predict.yaml is rendered without DeepSpeed.
    return problems
