"""The tutorial's whole job on the tiny model through the real llamafactory-cli: train, then export."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from safetensors import safe_open

from tests.conftest import zhouyi

pytestmark = pytest.mark.slow
PERSONA = "你是周文王"


@pytest.fixture
def trained(trained_run):
    return trained_run


def test_train_registers_data_and_saves_an_adapter(trained):
    project, run, result = trained
    registry = json.loads((project / "data" / "dataset_info.json").read_text())
    assert registry["zhougong_demo"]["columns"]["response"] == "output"
    adapter = json.loads((run / "train" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["peft_type"] == "LORA"
    log = [json.loads(line) for line in (run / "train" / "trainer_log.jsonl").read_text().splitlines()]
    assert log[-1]["current_steps"] == log[-1]["total_steps"] > 0
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert losses[-1] < losses[0], "the tiny model learns something"


def assert_merged(merged, name: str, base_dir: Path, adapter_dir: Path) -> None:
    """`merged` (weight `name` of a merged model) is the base's weight plus the adapter's (alpha / r) * B @ A: the
    adapter is in it, neither left out (a copy of the base) nor in twice."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    with safe_open(base_dir / "model.safetensors", "pt") as base, \
            safe_open(adapter_dir / "adapter_model.safetensors", "pt") as adapter:
        stem = "base_model.model." + name.removesuffix(".weight")
        delta = scale * adapter.get_tensor(f"{stem}.lora_B.weight") @ adapter.get_tensor(f"{stem}.lora_A.weight")
        original = base.get_tensor(name)
    assert delta.abs().max() > 1e-4, "training moved the adapter"
    assert (merged.float() - (original.float() + delta.float())).abs().max() < 1e-5


def test_manifest_records_the_run(trained):
    project, run, _ = trained
    manifest = json.loads((run / "manifest.json").read_text())
    data_file = str(project / "data" / "zhougong_demo.json")
    assert manifest["data"][data_file] == hashlib.sha256(Path(data_file).read_bytes()).hexdigest()
    assert set(manifest["rendered"]) >= {"train.yaml", "infer.yaml", "export.yaml"}
    assert manifest["versions"]["torch"] and manifest["spec"]["model"]["template"] == "qwen"
    assert (run / "spec.yaml").read_text().startswith("# The tutorial's job on the tiny local model")


def test_export_merges_weights_writes_the_modelfile_and_smoke_generates(exported_run):
    project, run, result = exported_run  # `zhouyi export tiny-cpu --run RUN`, after its evaluation
    merged = run / "merged"
    with safe_open(merged / "model.safetensors", "pt") as weights:
        assert not any("lora" in key for key in weights.keys()), "adapter merged into the base weights"
        name = "model.layers.0.self_attn.q_proj.weight"
        assert_merged(weights.get_tensor(name), name, project / "models" / "tiny-qwen2", run / "train")
    modelfile = (merged / "Modelfile").read_text()
    assert f'SYSTEM """{PERSONA}' in modelfile, "the persona travels into the Ollama Modelfile"
    smoke = re.search(r"smoke check: (\d+) new tokens from (\S+): ", result.stdout)
    assert smoke and int(smoke.group(1)) > 0 and smoke.group(2) == str(merged), result.stdout[-2000:]
    assert "zhouyi.child.smoke" in result.stdout, "plain transformers loaded the merge, outside LLaMA-Factory"
    again = zhouyi("export", "tiny-cpu", "--run", str(run), cwd=project)
    assert again.returncode == 2 and "not empty; pass --force" in again.stderr
