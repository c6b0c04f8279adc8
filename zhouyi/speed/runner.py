"""Short real trainings of a spec, measured: tokens/s, MFU, peak memory, time to the first step.

Every measurement is a real LLaMA-Factory training (zhouyi.child.bench_probe) on one device, in its own
process (forked from one that imported LLaMA-Factory once for all of a bench's runs), with `max_steps` set and the
first `warmup` steps left out of the rates. Results land in `<runs_dir>/bench-<name>-<time>/` as bench.json and
bench.md, one folder per measured variant.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zhouyi import launch, layout, process
from zhouyi.archs import arch_config
from zhouyi.errors import Stopped, UserError
from zhouyi.files import atomic_write, commit, refuse_foreign, write_json
from zhouyi.layout import TOKENIZER_FILES
from zhouyi.load import from_data
from zhouyi.packages import dist_version, package_versions
from zhouyi.render import render
from zhouyi.runs import render_context, runs_dir
from zhouyi.spec import JobSpec
from zhouyi.speed.flops import mfu, peak_tflops, train_flops
from zhouyi.speed.ladder import FULL, LADDER, Rung
from zhouyi.speed.profile import markdown
from zhouyi.train import register_for_training, write_files

MEASURED = layout.BENCH_MEASURED
INTERRUPTED = (128 + 2, 128 + 15)  # exit codes of a run ended by SIGINT / SIGTERM


@dataclass(frozen=True)
class BenchOptions:
    steps: int = 12
    warmup: int = 2
    random_init: bool = False
    cutoff_len: int | None = None  # None keeps the spec's
    tokenizer: Path | None = None  # tokenizer for a random-init model whose spec names a hub model
    max_samples: int | None = None
    cpu: bool = False  # measure on the CPU (fp32) whatever the spec's device
    profile: int = 0  # steps to profile after the warm-up (zhouyi.speed.profile); 0: none


@dataclass
class Result:
    name: str
    what: str
    status: str  # ok | oom | failed | skipped
    device: str | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_memory_gib: float | None = None  # CUDA: peak allocated; CPU: peak process RSS
    first_step_s: float | None = None  # from process start: imports, data, model load and the first step
    load_s: float | None = None  # from process start to the trainer's first callback
    tokens_measured: int | None = None
    mean_seq_len: float | None = None
    n_params: int | None = None
    n_trainable: int | None = None
    settings: dict | None = None
    note: str = ""
    profile: dict | None = None  # zhouyi.speed.profile's summary, with --profile


def bench_data(spec: JobSpec, opts: BenchOptions, base_dir: Path, work_dir: Path) -> dict[str, Any]:
    """The spec, as data, turned into a short measured run on one device."""
    data = spec.model_dump(mode="json", exclude_none=True)
    train = data["train"]
    train.update(max_steps=opts.steps, logging_steps=opts.steps, save_steps=10 * opts.steps, plot_loss=False,
                 report_to="none", val_size=0.0, tokenized_cache=True)
    if opts.cutoff_len:
        train["cutoff_len"] = opts.cutoff_len
    if opts.max_samples:
        train["max_samples"] = opts.max_samples
    data["data"]["datasets"] = [d for d in data["data"]["datasets"] if d.get("split", "train") == "train"]
    device = "cpu" if opts.cpu else spec.launch.device
    if opts.cpu:
        train.update(precision="fp32", enable_liger_kernel=False)
    first_gpu = (spec.launch.gpus or [0])[:1]
    data["launch"] = {"device": device, **({"gpus": first_gpu} if device == "cuda" else {})}
    data["output"] = {"runs_dir": str(runs_dir(spec, base_dir).resolve())}
    if opts.random_init:
        data["model"].update(model_name_or_path=str(random_init_model(spec, base_dir, work_dir, opts.tokenizer)),
                             source="local")
    return data


def random_init_model(spec: JobSpec, base_dir: Path, work_dir: Path, tokenizer: Path | None, echo=print) -> Path:
    """A model folder with the spec model's architecture, a tokenizer and random weights, built once.

    The config comes from a local model folder or from the configs zhouyi ships (zhouyi.archs); the
    tokenizer from --tokenizer, else the local model, else the tiny model's. No download, no weights.
    """
    local = (base_dir / spec.model.model_name_or_path).resolve() if spec.model.source == "local" else None
    if local:
        config = json.loads((local / layout.MODEL_CONFIG).read_text(encoding="utf-8"))
    else:
        config = arch_config(spec.model.model_name_or_path)
        if config is None:
            raise UserError(f"model.model_name_or_path: zhouyi ships no config for '{spec.model.model_name_or_path}';"
                            " benchmark a local model folder instead, or drop --random-init")
    source = tokenizer or local or base_dir / "models" / "tiny-qwen2"
    if not (source / layout.TOKENIZER_FILES[1]).is_file():
        raise UserError(f"--tokenizer: no tokenizer in {source}; run `zhouyi tiny-model` or pass --tokenizer DIR")
    folder = work_dir / "random-init-model"
    if (folder / layout.WEIGHT_INDEXES[0]).is_file() or (folder / layout.WEIGHTS[0]).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / layout.MODEL_CONFIG, json.dumps(config, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)
    code = process.run(launch.child("init_weights", str(folder), cwd=work_dir), echo=echo)
    if code != 0:
        raise UserError(f"could not build random weights in {folder} (exit {code})")
    return folder


def measure(name: str, what: str, data: dict[str, Any], opts: BenchOptions, base_dir: Path, work_dir: Path,
            probes: process.Conversation, echo=print) -> Result:
    """One real training of `data` (a spec as data), run by `probes` (see probing); never raises for a failed or
    out-of-memory run."""
    spec = from_data(data, f"bench:{name}")
    out = work_dir / name
    out.mkdir(parents=True, exist_ok=True)
    ctx = render_context(spec, out, base_dir)  # with the converted model of a `source: pypi` spec
    write_files(out, render(spec, ctx))
    profiling = ("--profile", str(opts.profile), "--after", str(opts.warmup)) if opts.profile else ()
    argv = [str(out / layout.TRAIN_YAML), str(out / MEASURED), *profiling]
    log = out / "train.log"
    # the command a fresh process would run; the probes' process runs it forked from its one import
    shown = launch.child("bench_probe", *argv, env=launch.launch_env(spec), cwd=out)
    echo(f"run: {shown.shell()} > {log} 2>&1", flush=True)
    answer = probes.ask({"argv": argv, "log": str(log), "cwd": str(out)})
    if answer is None:
        raise UserError(f"the bench's measuring process ended before it measured {name}; what it said is above")
    code = answer["code"]
    if code == 128 + signal.SIGINT:
        raise KeyboardInterrupt  # Ctrl-C (forwarded to the run) ends the whole bench: exit 130
    if code in INTERRUPTED:
        raise Stopped(code - 128)  # so does SIGTERM, and zhouyi exits as it: 143
    settings = {k: data["train"][k] for k in BASE_SETTINGS} | {
        "finetuning_type": spec.method.finetuning_type, "torch_compile": bool(spec.overrides.get("torch_compile"))}
    measured_file = out / MEASURED
    if code != 0 or not measured_file.is_file():
        log = (out / "train.log").read_text(encoding="utf-8", errors="replace")
        oom = "OutOfMemoryError" in log or "CUDA out of memory" in log
        last = [line for line in log.splitlines() if line.strip()][-1:] or ["(no output)"]
        return Result(name, what, "oom" if oom else "failed", settings=settings,
                      note=f"exit {code}: {last[0][:200]}; log: {out / 'train.log'}")
    return summarize(name, what, json.loads(measured_file.read_text()), opts.warmup, settings)


BASE_SETTINGS = ("cutoff_len", "per_device_train_batch_size", "gradient_accumulation_steps", "packing",
                 "gradient_checkpointing", "flash_attn", "enable_liger_kernel")


def summarize(name: str, what: str, measured: dict[str, Any], warmup: int, settings: dict | None = None) -> Result:
    """Rates over the steps after `warmup` >= 1 (the first steps carry compilation and allocator growth)."""
    steps = measured["steps"]
    if len(steps) <= warmup:
        return Result(name, what, "failed", settings=settings,
                      note=f"only {len(steps)} steps ran; raise --steps above --warmup {warmup}")
    first, last = steps[warmup - 1], steps[-1]
    seconds = last["t"] - first["t"]
    tokens = last["tokens"] - first["tokens"]
    sum_sq = last["sum_sq"] - first["sum_sq"]
    flops = train_flops(measured["n_params"], measured["n_layers"], measured["hidden_size"], tokens, sum_sq)
    peak_bytes = measured["peak_allocated_bytes"] or measured["peak_rss_bytes"]
    return Result(
        name, what, "ok",
        device=measured["device"],
        tokens_per_s=tokens / seconds if seconds > 0 else None,
        mfu=mfu(flops, seconds, peak_tflops(measured["device"])),
        peak_memory_gib=peak_bytes / 2**30,
        first_step_s=steps[0]["t"],
        load_s=measured.get("t_train_begin"),
        tokens_measured=int(tokens),
        mean_seq_len=sum_sq / tokens if tokens else None,
        n_params=measured["n_params"],
        n_trainable=measured["n_trainable"],
        settings=settings,
        profile=measured.get("profile"),
    )


def probing(data: dict[str, Any], work_dir: Path, echo=print):
    """The process that makes a bench's measured runs (zhouyi.child.bench_probe --serve): LLaMA-Factory imported
    once, each run in a forked copy, on the bench's one device (every rung shares `data`'s launch section)."""
    env = launch.launch_env(from_data(data, "bench"))
    return process.conversation(launch.child("bench_probe", "--serve", env=env, cwd=work_dir), echo)


def unavailable(rung: Rung, device: str) -> str | None:
    if rung.needs_gpu and device != "cuda":
        return "needs a GPU"
    if rung.needs_module and importlib.util.find_spec(rung.needs_module) is None:
        return f"needs the {rung.needs_module} package"
    return None


def ladder_run(data: dict[str, Any], opts: BenchOptions, base_dir: Path, work_dir: Path,
               probes: process.Conversation, echo=print, on_result=lambda results: None) -> list[Result]:
    """Baseline, then each rung on top of the last that ran, then full fine-tuning at the fastest settings, from
    `data` (bench_data's).

    `on_result(results so far)` runs after every rung, so a report survives a run cut short.
    """
    data = json.loads(json.dumps(data))
    data["method"] = {"finetuning_type": "lora", **{k: v for k, v in data["method"].items() if k != "finetuning_type"}}
    results, current, best, last_ok, micro_stopped = [], data, None, None, None
    for rung in (*LADDER, FULL):
        candidate = _patched(best[1] if rung is FULL and best else current, rung)
        reason = unavailable(rung, data["launch"]["device"]) or (micro_stopped if rung.micro_batch else None)
        if reason:
            results.append(Result(rung.name, rung.what, "skipped", note=reason))
            on_result(results)
            continue
        echo(f"bench rung {rung.name}: {rung.what}", flush=True)
        result = measure(rung.name, rung.what, candidate, opts, base_dir, work_dir, probes, echo)
        results.append(result)
        on_result(results)
        if rung.micro_batch and (result.status != "ok" or last_ok and result.tokens_per_s <= last_ok.tokens_per_s):
            micro_stopped = f"micro-batches stopped improving at {rung.name} ({result.status})"
            continue  # the next rungs build on the last micro-batch that was faster
        if result.status == "ok" and rung is not FULL:
            current, last_ok = candidate, result
            if best is None or result.tokens_per_s > best[0].tokens_per_s:
                best = (result, candidate)
    return results


def _patched(data: dict[str, Any], rung: Rung) -> dict[str, Any]:
    new = json.loads(json.dumps(data))
    new["train"].update(rung.train)
    if rung.overrides:
        new["overrides"] = {**new.get("overrides", {}), **rung.overrides}
    if rung.method is not None:
        new["method"] = dict(rung.method)
    return new


SPEED_KEYS = BASE_SETTINGS[1:]  # what a speed profile sets: everything measured but cutoff_len (the data's choice)


def speed_profile(spec_ref: str, results: list[Result], where: Path) -> str | None:
    """The fastest LoRA rung that ran, as a spec fragment on top of `spec_ref` (`base:`), saying the card and the
    date it was measured on; None when no LoRA rung ran. `where`: the file it is written to (a base given as a
    path is made relative to it, as `base:` is read)."""
    lora = [r for r in results if r.status == "ok" and r.settings and r.settings["finetuning_type"] != "full"]
    if not lora:
        return None
    best = max(lora, key=lambda r: r.tokens_per_s)
    base = spec_ref
    if "/" in spec_ref or spec_ref.endswith((".yaml", ".yml")):
        base = os.path.relpath(Path(spec_ref).resolve(), Path(where).resolve().parent)
    train = {k: best.settings[k] for k in SPEED_KEYS}
    lines = [f"# zhouyi bench --ladder, {time.strftime('%Y-%m-%d')}: the fastest rung, {best.name} "
             f"({best.tokens_per_s:,.0f} tokens/s, peak {best.peak_memory_gib:.1f} GiB), measured on {best.device}",
             f"# (LLaMA-Factory {dist_version('llamafactory')}, torch {dist_version('torch')}). A speed profile: "
             "train with it as your spec, or name it as another spec's base.",
             f"base: {json.dumps(base)}", "train:"]
    lines += [f"  {k}: {json.dumps(v)}" for k, v in train.items()]
    if best.settings.get("torch_compile"):
        lines.append("overrides:\n  torch_compile: true")
    return "\n".join(lines) + "\n"


def write_report(work_dir: Path, spec: JobSpec, opts: BenchOptions, results: list[Result]) -> tuple[Path, Path]:
    report = {
        "spec": spec.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "versions": {**package_versions(), "liger_kernel": dist_version("liger-kernel"),
                     "python": sys.version.split()[0]},
        "cpu_count": os.cpu_count(),
        "results": [asdict(r) for r in results],
    }
    json_path, md_path = work_dir / layout.BENCH_JSON, work_dir / layout.BENCH_MD
    write_json(json_path, report)
    profiles = [f"## {r.name}\n\n{markdown(r.profile)}" for r in results if r.profile]
    atomic_write(md_path, "\n\n".join([format_table(results), *profiles]) + "\n")
    return json_path, md_path


def format_table(results: list[Result]) -> str:
    """A markdown table; speed-up is against the first row that ran."""
    base = next((r.tokens_per_s for r in results if r.tokens_per_s), None)
    rows = ["| rung | status | tokens/s | vs first | MFU | peak GiB | first step s | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        rows.append("| " + " | ".join([
            r.name, r.status,
            _fmt(r.tokens_per_s, "{:,.0f}"),
            _fmt(r.tokens_per_s / base if r.tokens_per_s and base else None, "{:.2f}x"),
            _fmt(r.mfu * 100 if r.mfu is not None else None, "{:.1f}%"),
            _fmt(r.peak_memory_gib, "{:.1f}"),
            _fmt(r.first_step_s, "{:.1f}"),
            r.note.replace("|", "/"),
        ]) + " |")
    return "\n".join(rows)


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)



def check_request(opts: BenchOptions, ladder: bool, write_profile: Path | None) -> None:
    """Every flag of `zhouyi bench` checked before minutes of runs."""
    if opts.warmup < 1 or opts.steps <= opts.warmup:
        raise UserError(f"--steps {opts.steps} --warmup {opts.warmup}: need warmup >= 1 and steps > warmup")
    if write_profile and not ladder:
        raise UserError("--write-profile FILE writes the ladder's fastest rung: add --ladder")
    if write_profile:
        refuse_foreign([write_profile], False, what="--write-profile", force_flag=None)
    if opts.profile < 0 or opts.warmup + opts.profile > opts.steps:
        raise UserError(f"--profile {opts.profile}: profile at most --steps minus --warmup "
                        f"({opts.steps - opts.warmup}) steps")


def bench(spec: JobSpec, spec_ref: str, opts: BenchOptions, base: Path, output: Path | None, ladder: bool,
          write_profile: Path | None, echo=print) -> int:
    """`zhouyi bench`, whole: the spec as written (or the ladder) measured into `output` (or a stamped folder beside
    the runs), the report written after every rung, the fastest LoRA rung saved as a speed profile when asked.
    0 when any rung ran, else 1."""
    check_request(opts, ladder, write_profile)
    register_for_training(spec, base)
    work = (output or layout.bench_dir(runs_dir(spec, base), spec.run_name)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = bench_data(spec, opts, base, work)
    with probing(data, work, echo) as probes:
        if ladder:
            results = ladder_run(data, opts, base, work, probes,
                                 on_result=lambda so_far: write_report(work, spec, opts, so_far))
        else:
            results = [measure(spec.name, "the spec as written", data, opts, base, work, probes)]
    json_path, _ = write_report(work, spec, opts, results)
    echo(format_table(results))
    echo(f"bench report: {json_path}")
    if write_profile:
        fragment = speed_profile(spec_ref, results, write_profile)
        if fragment is None:
            raise UserError("no LoRA rung ran, so there is no speed profile to write; see the report")
        commit({write_profile: fragment})
        echo(f"speed profile: {write_profile} (zhouyi show {write_profile})")
    return 0 if any(r.status == "ok" for r in results) else 1
