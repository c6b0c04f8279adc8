"""Where a spec's tokenized dataset is cached, keyed on everything that changes the tokens.

LLaMA-Factory's `tokenized_path` loads whatever is at the path and ignores the data arguments
("Loading dataset from disk will ignore other data arguments"), so a fixed path silently trains
on stale data after the data or tokenizer changed. zhouyi names the folder by a hash of the data
files' contents, the tokenizer, the template and every setting the tokenization depends on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from zhouyi.files import sha256_file
from zhouyi.layout import DATASET_INFO, TOKENIZER_FILES
from zhouyi.packages import dist_version
from zhouyi.spec import JobSpec

CACHE_DIR = ".tokenized"  # inside the spec's runs_dir


def cache_key(spec: JobSpec, base_dir: Path) -> str:
    dataset_dir = base_dir / spec.data.dataset_dir
    model_dir = base_dir / spec.model.model_name_or_path
    data = {}
    for entry in spec.data.datasets:
        path = dataset_dir / entry.file_name if entry.file_name else None
        data[entry.name] = [entry.model_dump(mode="json"), sha256_file(path) if path and path.is_file() else None]
    registry = dataset_dir / DATASET_INFO
    tokenizer = (
        {name: sha256_file(model_dir / name) for name in TOKENIZER_FILES if (model_dir / name).is_file()}
        if spec.model.source == "local"
        else {"id": spec.model.model_name_or_path, "revision": spec.model.model_revision}
    )
    t = spec.train
    key = {
        "llamafactory": dist_version("llamafactory"),
        "tokenizer": tokenizer,
        "template": spec.model.template,
        "default_system": spec.model.default_system,
        "data": data,
        "registry": sha256_file(registry) if registry.is_file() else None,
        "train": [t.stage, t.cutoff_len, t.max_samples, t.packing, t.neat_packing, t.val_size, t.seed],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def tokenized_dir(spec: JobSpec, base_dir: Path) -> Path | None:
    """The cache folder for this spec, or None when `train.tokenized_cache` is off."""
    if not spec.train.tokenized_cache:
        return None
    return (base_dir / spec.output.runs_dir / CACHE_DIR / cache_key(spec, base_dir)).resolve()
