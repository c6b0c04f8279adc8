"""Model architectures shipped as config.json (no weights), for random-init benchmarks and estimates.

Named by the model id's last part, lower-cased: `Qwen/Qwen2.5-1.5B-Instruct` -> qwen2.5-1.5b-instruct.json.
"""

from __future__ import annotations

import json
from importlib import resources


def arch_config(model_id: str) -> dict | None:
    """The shipped config.json for a model id, or None when zhouyi ships none for it."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1].lower()
    path = resources.files(__name__) / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
