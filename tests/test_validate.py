"""`zhouyi validate` on good and bad specs. One validate call covers many specs: llamafactory is imported once."""

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, cli, lay_out_project, write_json

GOOD = """
name: {name}
model: {{model_name_or_path: models/tiny-qwen2, source: local, template: {template}}}
data:
  datasets: [{{name: {dataset}, {file}}}]
train: {{precision: {precision}, max_steps: 2}}
launch: {{device: cpu}}
overrides: {overrides}
"""


def spec(folder: Path, name: str, template="qwen", dataset="zhougong_demo", file="file_name: zhougong_demo.json",
         precision="fp32", overrides="{}") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(GOOD.format(name=name, template=template, dataset=dataset, file=file, precision=precision,
                                overrides=overrides))
    return path.name


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    project = lay_out_project(tmp_path_factory.mktemp("validate"))
    write_json(project / "data" / "rows_missing_output.json", [{"instruction": "a", "input": ""}])
    (project / "data" / "broken.json").write_text('[{"instruction": "a",')
    names = {
        "good": spec(project, "good"),
        "override": spec(project, "override", overrides="{lora_rnak: 3, neftune_noise_alpha: 5}"),
        "wrongtype": spec(project, "wrongtype", precision="'yes'"),
        "unregistered": spec(project, "unregistered", dataset="nowhere", file="formatting: alpaca"),
        "missingfile": spec(project, "missingfile", file="file_name: absent.json"),
        "column": spec(project, "column", dataset="cols", file="file_name: rows_missing_output.json"),
        "broken": spec(project, "broken", dataset="broken", file="file_name: broken.json"),
        "template": spec(project, "template", template="qwen9"),
        "bf16": spec(project, "bf16", precision="bf16"),
    }
    # the presets too, in a project where the tutorial's data exists, shaped as `zhouyi data clean` writes it
    demo = json.loads((REPO / "data" / "zhougong_demo.json").read_text(encoding="utf-8"))
    rows = [{"system": r["instruction"], "instruction": r["input"], "input": "", "output": r["output"]} for r in demo]
    write_json(project / "data" / "zhougong.json", rows[:-8])
    write_json(project / "data" / "zhougong_eval.json", rows[-8:])
    refs = [*names.values(), "tiny-cpu", "zhougong-lora"]
    result = cli("validate", "--json", *refs, cwd=project)
    by_ref = {r["spec"]: r for r in json.loads(result.stdout)}
    return {key: by_ref[ref] for key, ref in names.items()} | {p: by_ref[p] for p in ("tiny-cpu", "zhougong-lora")} \
        | {"_rc": result.returncode}


def messages(report) -> str:
    return "\n".join(f"{p['where']}: {p['message']}" for p in report["problems"] if p["level"] == "error")


def test_exit_code_2_when_any_spec_fails(reports):
    assert reports["_rc"] == 2


@pytest.mark.parametrize("ref", ["good", "tiny-cpu", "zhougong-lora"])
def test_good_specs_and_presets_pass(reports, ref):
    assert reports[ref]["ok"], messages(reports[ref])


def test_unknown_override_key_caught_by_llamafactory(reports):
    text = messages(reports["override"])
    assert "train.yaml (llamafactory)" in text and "lora_rnak" in text and "neftune" not in text


def test_wrong_type(reports):
    assert "train.precision" in messages(reports["wrongtype"])


def test_unregistered_dataset(reports):
    assert "'nowhere' is not registered" in messages(reports["unregistered"])


def test_missing_file(reports):
    assert "absent.json: data file not found" in messages(reports["missingfile"])


def test_missing_column(reports):
    assert "column 'output' (response) missing in 1 of 1 rows" in messages(reports["column"])


def test_malformed_data(reports):
    assert "broken.json: cannot read rows: line 1" in messages(reports["broken"])


def test_unknown_template(reports):
    assert "unknown template 'qwen9'" in messages(reports["template"])


def test_bf16_on_cpu(reports):
    assert "train.precision: bf16 needs a GPU" in messages(reports["bf16"])
