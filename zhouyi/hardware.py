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
