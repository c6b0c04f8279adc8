"""The tutorial's whole job on the tiny model through the real llamafactory-cli: train, then export."""

import json
import re

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


def test_manifest_records_the_run(trained):
    project, run, _ = trained
    manifest = json.loads((run / "manifest.json").read_text())
    data_file = str(project / "data" / "zhougong_demo.json")
    assert len(manifest["data"][data_file]) == 64
    assert set(manifest["rendered"]) >= {"train.yaml", "infer.yaml", "export.yaml"}
    assert manifest["versions"]["torch"] and manifest["spec"]["model"]["template"] == "qwen"
    assert (run / "spec.yaml").read_text().startswith("# The tutorial's job on the tiny local model")


def test_export_merges_weights_writes_the_modelfile_and_smoke_generates(trained):
    project, run, _ = trained
    result = zhouyi("export", "tiny-cpu", "--run", str(run), cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    merged = run / "merged"
    with safe_open(merged / "model.safetensors", "pt") as weights:
        assert not any("lora" in key for key in weights.keys()), "adapter merged into the base weights"
    modelfile = (merged / "Modelfile").read_text()
    assert f'SYSTEM """{PERSONA}' in modelfile, "the persona travels into the Ollama Modelfile"
    smoke = re.search(r"smoke check: (\d+) new tokens from (\S+): ", result.stdout)
    assert smoke and int(smoke.group(1)) > 0 and smoke.group(2) == str(merged), result.stdout[-2000:]
    assert "zhouyi.child.smoke" in result.stdout, "plain transformers loaded the merge, outside LLaMA-Factory"
    again = zhouyi("export", "tiny-cpu", "--run", str(run), cwd=project)
    assert again.returncode == 2 and "not empty; pass --force" in again.stderr
