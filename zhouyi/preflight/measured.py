"""The largest micro-batch that fits a card, from peaks `zhouyi bench` measured on that card (`zhouyi estimate
--measured bench.json`). A training's peak grows about linearly with the micro-batch (the activations; weights,
gradients and optimizer state stay), so two measured micro-batches give the line; one gives its height, and the
slope comes from zhouyi's own estimate of a row's activations. A rung that ran out of memory bounds it from above."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.preflight.hardware import Card
from zhouyi.user_files import read_json, wrong_shape

GIB = 2**30
MARGIN = 0.92  # of the card: the allocator's fragmentation and CUDA's own context live in the rest
CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Fit:
    micro_batch: int | None  # None: not even 1 fits
    predicted_bytes: float | None
    points: list[tuple[int, float]]  # (micro-batch, measured peak bytes)
    too_big: int | None  # the smallest micro-batch that ran out of memory
    source: str
    settings: dict  # what the peaks were measured with (cutoff, packing, checkpointing, Liger, method)


def measured_points(report_path: Path, card: Card) -> tuple[list[tuple[int, float]], int | None, dict]:
    """(micro-batch, peak bytes) of the report's rungs (one report: one card, which must be `card`) with the
    settings of its last rung that ran (packing, checkpointing, Liger, method and cutoff alike), the smallest
    micro-batch that ran out of memory with them, and those settings."""
    mend = "give the bench.json that `zhouyi bench SPEC --ladder` wrote"
    report = read_json(Path(report_path), "--measured", mend)
    try:
        return _points(report, report_path, card)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise wrong_shape(report_path, "--measured", f"a zhouyi bench report ({type(exc).__name__}: {exc})",
                          mend) from None


def _points(report: dict, report_path: Path, card: Card) -> tuple[list[tuple[int, float]], int | None, dict]:
    results = report["results"]
    ok = [r for r in results if r.get("status") == "ok" and r.get("settings")]
    devices = sorted({r.get("device") or "?" for r in ok})
    if not ok or devices != [card.name]:
        raise UserError(f"--measured {report_path}: measured on {', '.join(devices) or 'nothing'}, not {card.name}; "
                        "measure on that card: zhouyi bench SPEC --ladder")
    on_card = [r for r in results if r.get("settings") and r.get("status") in ("ok", "oom")]
    keys = [k for k in ok[-1]["settings"] if k not in ("per_device_train_batch_size", "gradient_accumulation_steps")]
    same = [r for r in on_card if all(r["settings"].get(k) == ok[-1]["settings"].get(k) for k in keys)]
    points = sorted({int(r["settings"]["per_device_train_batch_size"]): float(r["peak_memory_gib"]) * GIB
                     for r in same if r["status"] == "ok"}.items())
    if any(b < 1 or not math.isfinite(peak) or peak <= 0 for b, peak in points):
        raise ValueError("a micro-batch below 1, or a peak that is not a positive, finite number of GiB")
    oom = [int(r["settings"]["per_device_train_batch_size"]) for r in same if r["status"] == "oom"]
    return points, min(oom) if oom else None, {k: ok[-1]["settings"][k] for k in keys}


def largest_fitting(points: list[tuple[int, float]], too_big: int | None, card: Card,
                    bytes_per_row: float, source: str, settings: dict) -> Fit:
    """The largest candidate micro-batch whose peak, on the line through `points`, stays under MARGIN of the card."""
    if len(points) >= 2:
        (b0, p0), (b1, p1) = points[0], points[-1]
        slope = (p1 - p0) / (b1 - b0) if b1 != b0 else bytes_per_row
    else:
        slope = bytes_per_row
    b0, p0 = points[0]
    fixed = p0 - slope * b0
    limit = card.memory_gib * GIB * MARGIN
    fitting = [b for b in CANDIDATES if fixed + slope * b <= limit and (too_big is None or b < too_big)]
    best = max(fitting, default=None)
    return Fit(best, None if best is None else fixed + slope * best, points, too_big, source, settings)


def describe(fit: Fit, card: Card) -> str:
    shown = ", ".join(f"micro-batch {b} peaked at {p / GIB:.1f} GiB" for b, p in fit.points)
    at = ", ".join(f"{k} {v}" for k, v in fit.settings.items())
    head = f"measured on {card.name} ({fit.source}) with {at}: {shown}" + (
        f"; micro-batch {fit.too_big} ran out of memory" if fit.too_big else "")
    if fit.micro_batch is None:
        return head + f"\nno micro-batch fits {card.memory_gib:.0f} GiB with {1 - MARGIN:.0%} to spare"
    return (head + f"\nlargest micro-batch that fits {card.memory_gib:.0f} GiB with {1 - MARGIN:.0%} to spare: "
            f"{fit.micro_batch} (predicted peak {fit.predicted_bytes / GIB:.1f} GiB), with those settings")
