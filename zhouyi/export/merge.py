"""`zhouyi export`, as a library: merge the adapter into safetensors shards with `llamafactory-cli export`, check
the persona into the Ollama Modelfile, and smoke-generate from the merge with plain transformers; or, as a second
step, GPTQ-quantize that merge, calibrated on the project's own training answers."""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi import launch, layout, process
from zhouyi.errors import UserError
from zhouyi.export import card, gate
from zhouyi.files import atomic_write, read_json_rows
from zhouyi.launch import Command
from zhouyi.packages import dist_version
from zhouyi.render import RenderContext, render_quantize
from zhouyi.runs import ensure_empty_target
from zhouyi.spec import JobSpec

QUANTIZE_PACKAGES = ("optimum", "gptqmodel")  # what LLaMA-Factory's GPTQ export imports


def merge(spec: JobSpec, run_dir: Path, force: bool, dry_run: bool = False, skip_gate: bool = False) -> int:
    """Merge, make sure the Modelfile carries the persona, smoke-generate; 0 or the failing exit code."""
    cmd = launch.build(spec, "export", run_dir)
    if dry_run:
        return process.run(cmd, dry_run=True)
    if skip_gate:
        decision = "skipped (--skip-gate): the model left without the gate's check"
        print(f"export gate: {decision}")
    else:
        decision = gate.check(spec, run_dir)
    target = layout.merged_dir(run_dir, spec.export.export_dir)
    ensure_empty_target(target, force)
    code = process.run(cmd)
    if code != 0:
        print(f"export failed (exit {code}): {target}")
        return code
    if modelfile_with_persona(target, spec.model.default_system):
        print(f"{target / layout.MODELFILE}: added the persona as SYSTEM")
    print(f"{card.write(spec, run_dir, target, decision)}: the model card, its facts in {card.PROVENANCE} "
          "(zhouyi verify checks them)")
    code = process.run(smoke_command(spec, target))
    print(f"{'exported' if code == 0 else f'exported, but the smoke generation failed (exit {code})'}: {target}")
    return code


def quantize(spec: JobSpec, run_dir: Path, bits: int, ctx: RenderContext, force: bool, dry_run: bool = False) -> int:
    """GPTQ-quantize the run's merged weights into `<export_dir>-gptq-int<bits>`, then smoke-generate from them."""
    require_merged(layout.merged_dir(run_dir, spec.export.export_dir))
    missing = missing_quantize_packages()
    if missing and not dry_run:
        raise UserError(f"GPTQ quantization needs {' and '.join(missing)} (pip install {' '.join(missing)}) and, "
                        "in practice, a CUDA GPU")
    calibration = run_dir / layout.CALIBRATION
    maxlen = spec.export.export_quantization_maxlen
    write_calibration(calibration, calibration_texts(spec, ctx, 4 * maxlen, spec.export.export_quantization_nsamples))
    atomic_write(run_dir / layout.QUANTIZE_YAML, render_quantize(spec, run_dir, bits, calibration))
    cmd = launch.build(spec, "quantize", run_dir)
    if dry_run:
        return process.run(cmd, dry_run=True)
    target = layout.quantized_dir(run_dir, spec.export.export_dir, bits)
    ensure_empty_target(target, force)
    code = process.run(cmd)
    if code == 0:
        code = process.run(smoke_command(spec, target))
    print(f"{'quantized' if code == 0 else f'quantization failed (exit {code})'}: {target}")
    return code


def modelfile_with_persona(folder: Path, persona: str | None) -> bool:
    """Make sure the Modelfile's SYSTEM is the persona (LLaMA-Factory writes it from default_system; a template
    without a system slot drops it). True when zhouyi had to add it."""
    path = folder / layout.MODELFILE
    if not persona or not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    line = f'SYSTEM """{persona}"""'
    if line in text:
        return False
    atomic_write(path, text.rstrip("\n") + f"\n\n{line}\n")
    return True


def smoke_command(spec: JobSpec, folder: Path) -> Command:
    """Load `folder` with plain transformers on the device chat and export use, and generate as the persona."""
    persona = spec.model.default_system
    return launch.child("smoke", str(folder), *(["--system", persona] if persona else []),
                        env=launch.single_process_env(spec), cwd=folder)


def require_merged(folder: Path, step: str = "--quantize", why: str = "LLaMA-Factory quantizes merged weights, "
                   "never an adapter") -> None:
    """The second steps of an export (--quantize, --gguf, --check) start from the merge."""
    if not layout.is_model(folder):
        raise UserError(f"{folder} holds no merged model; run `zhouyi export` first (without {step}): {why}")


def missing_quantize_packages() -> list[str]:
    return [name for name in QUANTIZE_PACKAGES if dist_version(name) is None]


def calibration_texts(spec: JobSpec, ctx: RenderContext, min_chars: int, count: int) -> list[str]:
    """Up to `count` texts of at least `min_chars` characters, each a run of training answers: GPTQ samples
    windows longer than export_quantization_maxlen tokens, and the domain's own text calibrates best."""
    answers = []
    for entry in spec.data.datasets:
        if entry.split == "train" and entry.file_name and entry.formatting == "alpaca":
            path = ctx.resolve(spec.data.dataset_dir) / entry.file_name
            answers += [str(r.get(entry.resolved_columns.response, "")) for r in read_json_rows(path)]
    texts, current = [], ""
    for answer in answers:
        current += answer + "\n"
        if len(current) >= min_chars:
            texts.append(current)
            current = ""
            if len(texts) == count:
                break
    if not texts:
        raise UserError(f"the training answers hold fewer than {min_chars:,} characters in all, too few to calibrate "
                        "GPTQ; lower export.export_quantization_maxlen")
    return texts


def write_calibration(path: Path, texts: list[str]) -> None:
    atomic_write(path, "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
