"""Spec composition: `base:` chains, `--set` overrides, and where every value came from."""

import pytest
import yaml

from tests.conftest import cli
from zhouyi.errors import SpecError, UserError
from zhouyi.load import load, with_origins


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_base_preset_then_file_then_set_with_origins(tmp_path):
    mine = write(tmp_path, "mine.yaml", "base: tiny-cpu\nname: mine\ntrain: {learning_rate: 0.002}\n")
    loaded = load(mine, ["train.max_steps=3", "launch.device=cpu"])
    spec, where = loaded.spec, loaded.source
    assert spec.name == "mine" and spec.train.learning_rate == 0.002 and spec.train.max_steps == 3
    assert spec.train.cutoff_len == 256 and spec.model.model_name_or_path == "models/tiny-qwen2"  # from the base
    shown = with_origins(loaded)
    assert "train.learning_rate: 0.002  # " + where in shown
    assert "train.cutoff_len: 256  # preset:tiny-cpu" in shown and "train.max_steps: 3  # --set" in shown
    assert "train.seed: 42  # preset:tiny-cpu" in shown and "infer.top_k: 50  # default" in shown


def test_relative_base_files_chain_and_a_cycle_is_refused(tmp_path):
    write(tmp_path, "common/base.yaml", "base: tiny-cpu\ntrain: {cutoff_len: 128}\n")
    child = write(tmp_path, "jobs/child.yaml", "base: ../common/base.yaml\nname: child\n")
    spec = load(child).spec
    assert spec.train.cutoff_len == 128 and spec.name == "child"
    write(tmp_path, "a.yaml", "base: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "base: a.yaml\n")
    with pytest.raises(UserError, match=r"spec base cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load(str(tmp_path / "a.yaml"))


def test_a_new_method_replaces_the_base_method():
    spec = load("tiny-cpu", ["method={finetuning_type: full}"]).spec
    assert spec.method.finetuning_type == "full"
    loaded = load("tiny-cpu", ["method.finetuning_type=freeze"])
    spec, origins = loaded.spec, loaded.origins
    assert spec.method.finetuning_type == "freeze" and "method.lora_rank" not in origins
    spec = load("tiny-cpu", ["method.lora_rank=16"]).spec
    assert spec.method.lora_rank == 16 and spec.method.lora_alpha == 16  # merged, not replaced


def test_bad_sets_name_the_key():
    with pytest.raises(SpecError) as info:
        load("tiny-cpu", ["train.learning_rat=1e-4", "train.cutoff_len=long"])
    problems = dict(info.value.problems)
    assert "did you mean 'learning_rate'?" in problems["train.learning_rat"]
    assert "got 'long'" in problems["train.cutoff_len"]
    for bad, message in (("train.cutoff_len", "expected key.path=value"),
                         ("train.cutoff_len.x=1", "'train.cutoff_len' is a value, not a section")):
        with pytest.raises(UserError, match=message):
            load("tiny-cpu", [bad])


def test_set_reaches_every_verb(project):
    result = cli("train", "tiny-cpu", "--dry-run", "--set", "train.max_steps=3", cwd=project)
    assert result.returncode == 0, result.stderr
    (run,) = (project / "runs").iterdir()
    assert yaml.safe_load((run / "train.yaml").read_text())["max_steps"] == 3
    assert yaml.safe_load((run / "spec.resolved.yaml").read_text())["train"]["max_steps"] == 3
    shown = cli("show", "tiny-cpu", "--origins", "--set", "train.seed=7", cwd=project)
    assert "train.seed: 7  # --set" in shown.stdout
    bad = cli("render", "tiny-cpu", "--set", "train.nope=1", cwd=project)
    assert bad.returncode == 2 and "train.nope" in bad.stderr


def test_schema_knows_base_so_editors_accept_it(tmp_path):
    import json

    schema = json.loads(cli("schema", cwd=tmp_path).stdout)
    assert schema["properties"]["base"]["type"] == "string" and schema["additionalProperties"] is False
