"""What `zhouyi export` adds around `llamafactory-cli export`: the persona checked into the Ollama Modelfile, a
smoke generation from the merged weights with plain transformers, and GPTQ quantization as a second step
calibrated on the project's own training answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.launch import Command, single_process_env
from zhouyi.render import RenderContext
from zhouyi.runs import dist_version
from zhouyi.spec import JobSpec
from zhouyi.yamlio import atomic_write

CALIBRATION = "quantize_calibration.jsonl"
QUANTIZE_PACKAGES = ("optimum", "gptqmodel")  # what LLaMA-Factory's GPTQ export imports


def modelfile_with_persona(folder: Path, persona: str | None) -> bool:
    """Make sure the Modelfile's SYSTEM is the persona (LLaMA-Factory writes it from default_system; a template
    without a system slot drops it). True when zhouyi had to add it."""
    path = folder / "Modelfile"
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
    return Command([sys.executable, "-m", "zhouyi.smoke", str(folder), *(["--system", persona] if persona else [])],
                   single_process_env(spec), str(folder))


def require_merged(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} holds no merged model; run `zhouyi export` without --quantize first "
                        "(LLaMA-Factory quantizes merged weights, never an adapter)")


def missing_quantize_packages() -> list[str]:
    return [name for name in QUANTIZE_PACKAGES if dist_version(name) is None]


def calibration_texts(spec: JobSpec, ctx: RenderContext, min_chars: int, count: int) -> list[str]:
    """Up to `count` texts of at least `min_chars` characters, each a run of training answers: GPTQ samples
    windows longer than export_quantization_maxlen tokens, and the domain's own text calibrates best."""
    from zhouyi.validate import load_rows

    answers = []
    for entry in spec.data.datasets:
        if entry.split == "train" and entry.file_name and entry.formatting == "alpaca":
            path = ctx.resolve(spec.data.dataset_dir) / entry.file_name
            answers += [str(r.get(entry.resolved_columns.response, "")) for r in load_rows(path)]
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
