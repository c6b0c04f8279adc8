"""Where a training step's time goes (`zhouyi bench --profile N`): torch.profiler around N steps after the warm-up,
inside the real LLaMA-Factory training (zhouyi.child.bench_probe), summed up here into a table that adds up to the
wall time. The probe keeps, for the training thread, the time of each top-level span (the outermost profiled events,
which do not overlap: a DataLoader fetch, an operator of the forward, a backward node, the optimizer step); what no
span covers is the Python between them (the trainer's own logic, callbacks, logging). It also keeps every
operator's count and self time, and on a GPU the kernels' busy time."""

from __future__ import annotations

CATEGORIES = (  # top-level span name prefix -> where the time goes
    ("data loading and collation (DataLoader)", ("enumerate(DataLoader)",)),
    ("optimizer step and zeroing", ("Optimizer.",)),
    ("backward (autograd nodes; with checkpointing, the forward's recomputation too)", ("autograd::",)),
    ("zhouyi's token-counting hook", ("zhouyi.",)),
    ("forward and other operators (aten, checkpointed layers)", ("aten::", "CheckpointFunction")),
)
OTHER = "other profiled spans"
OUTSIDE = "outside any profiled span: the trainer's Python, callbacks, logging"


def breakdown(profile: dict) -> list[tuple[str, float]]:
    """(where, ms per step) rows that add up to the wall time per step."""
    steps = profile["steps"]
    rows = {name: 0.0 for name, _ in CATEGORIES} | {OTHER: 0.0}
    for span in profile["top_level"]:
        where = next((name for name, prefixes in CATEGORIES if span["name"].startswith(prefixes)), OTHER)
        rows[where] += span["ms"] / steps
    wall = profile["wall_ms"] / steps
    rows[OUTSIDE] = wall - sum(rows.values())
    return [(where, ms) for where, ms in rows.items()]


def markdown(profile: dict, top: int = 10) -> str:
    steps = profile["steps"]
    wall = profile["wall_ms"] / steps
    lines = [f"### Where a step's time goes ({profile['device']}, {steps} profiled steps after the warm-up)", "",
             f"Wall time {wall:,.1f} ms a step; operators launched: {profile['ops_launched'] / steps:,.0f} a step"
             + (f"; GPU kernels: {profile['kernels'] / steps:,.0f} a step, the GPU busy "
                f"{profile['device_busy_ms'] / steps:,.1f} ms ({profile['device_busy_ms'] / profile['wall_ms']:.0%})"
                if profile.get("kernels") else
                f"; operators' own time {profile['ops_self_ms'] / steps:,.1f} ms "
                f"({profile['ops_self_ms'] / profile['wall_ms']:.0%} of the wall)") + ".", "",
             "| where | ms a step | share |", "| --- | ---: | ---: |"]
    rows = breakdown(profile)
    lines += [f"| {where} | {ms:,.1f} | {ms / wall:.1%} |" for where, ms in rows]
    lines += [f"| **wall** | **{wall:,.1f}** | 100% |", "", f"Top {top} operators by own time:", "",
              "| operator | calls a step | own ms a step |" + (" device ms a step |" if profile.get("kernels") else ""),
              "| --- | ---: | ---: |" + (" ---: |" if profile.get("kernels") else "")]
    key = "device_ms" if profile.get("kernels") else "self_ms"
    for op in sorted(profile["ops"], key=lambda o: -o[key])[:top]:
        lines.append(f"| `{op['name']}` | {op['count'] / steps:,.1f} | {op['self_ms'] / steps:,.2f} |"
                     + (f" {op['device_ms'] / steps:,.2f} |" if profile.get("kernels") else ""))
    return "\n".join(lines)


def summarize_events(events, wall_ms: float, steps: int, device: str) -> dict:
    """The probe's side: torch.profiler's events reduced to what `markdown` shows (JSON-ready)."""
    threads: dict[int, float] = {}
    for e in events:
        if e.cpu_parent is None:
            threads[e.thread] = threads.get(e.thread, 0.0) + (e.time_range.end - e.time_range.start)
    main = max(threads, key=threads.get) if threads else None
    top: dict[str, float] = {}
    ops: dict[str, dict] = {}
    kernels = device_busy = 0.0
    for e in events:
        duration_ms = (e.time_range.end - e.time_range.start) / 1000
        if e.cpu_parent is None and e.thread == main:
            top[e.name] = top.get(e.name, 0.0) + duration_ms
        if e.name.startswith("aten::"):
            op = ops.setdefault(e.name, {"name": e.name, "count": 0, "self_ms": 0.0, "device_ms": 0.0})
            op["count"] += 1
            op["self_ms"] += e.self_cpu_time_total / 1000
            op["device_ms"] += getattr(e, "self_device_time_total", 0) / 1000
        for kernel in getattr(e, "kernels", []) or []:
            kernels += 1
            device_busy += kernel.duration / 1000
    return {"steps": steps, "wall_ms": wall_ms, "device": device,
            "top_level": [{"name": n, "ms": ms} for n, ms in sorted(top.items(), key=lambda kv: -kv[1])],
            "ops": list(ops.values()), "ops_launched": sum(o["count"] for o in ops.values()),
            "ops_self_ms": sum(o["self_ms"] for o in ops.values()), "kernels": kernels, "device_busy_ms": device_busy}
