import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from zhouyi.errors import SpecError
from zhouyi.load import from_text, load, preset_names
from zhouyi.render import RenderContext, render
from zhouyi.yamltext import omegaconf_problem, yaml_value

GOLDEN = Path(__file__).parent / "golden"
CTX = RenderContext(Path("/project"), Path("/project/runs/job-1"))
UPDATE = os.environ.get("ZHOUYI_UPDATE_GOLDENS") == "1"


@pytest.mark.parametrize("preset", preset_names())
def test_rendered_files_match_goldens(preset):
    files = render(load(preset).spec, CTX)
    folder = GOLDEN / preset
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert sorted(files) == sorted(p.name for p in folder.iterdir()), "set ZHOUYI_UPDATE_GOLDENS=1 to refresh"
    for name, text in files.items():
        assert text == (folder / name).read_text(encoding="utf-8"), f"{preset}/{name} differs from its golden"


def test_rendered_yaml_is_what_the_spec_says():
    spec = load("zhougong-lora").spec
    files = render(spec, CTX)
    train = yaml.safe_load(files["train.yaml"])
    assert train["learning_rate"] == spec.train.learning_rate
    assert train["dataset"] == "zhougong" and train["dataset_dir"] == "/project/data"
    assert train["output_dir"] == "/project/runs/job-1/train" and train["bf16"] is True
    assert train["default_system"] == spec.model.default_system
    infer = yaml.safe_load(files["infer.yaml"])
    assert infer["adapter_name_or_path"] == "/project/runs/job-1/train"
    export = yaml.safe_load(files["export.yaml"])
    assert export["export_dir"] == "/project/runs/job-1/merged"
    info = json.loads(files["dataset_info.json"])
    assert info["zhougong"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output",
                                           "system": "system"}


BASE = """
name: t
model: {model_name_or_path: m, template: qwen}
data: {datasets: [{name: d, file_name: d.json}, {name: e, file_name: e.json, split: eval}]}
"""


def test_method_variants_render_lf_keys():
    qlora = yaml.safe_load(render(from_text(BASE + "method: {finetuning_type: qlora}\n"), CTX)["train.yaml"])
    assert qlora["finetuning_type"] == "lora" and qlora["quantization_bit"] == 4
    full = render(from_text(BASE + "method: {finetuning_type: full}\n"), CTX)
    infer = yaml.safe_load(full["infer.yaml"])
    assert infer["model_name_or_path"] == "/project/runs/job-1/train" and "adapter_name_or_path" not in infer
    freeze = yaml.safe_load(render(from_text(BASE + "method: {finetuning_type: freeze}\n"), CTX)["train.yaml"])
    assert freeze["freeze_trainable_layers"] == 2


def test_eval_split_gives_predict_yaml_and_deepspeed_gives_json():
    files = render(from_text(BASE + "launch: {deepspeed: zero3_offload, gpus: [0, 1]}\n"), CTX)
    predict = yaml.safe_load(files["predict.yaml"])
    assert predict["eval_dataset"] == "e" and predict["predict_with_generate"] is True
    train = yaml.safe_load(files["train.yaml"])
    assert train["dataset"] == "d" and train["eval_dataset"] == "e"
    assert train["deepspeed"] == "/project/runs/job-1/ds_zero3_offload.json"
    ds = json.loads(files["ds_zero3_offload.json"])
    assert ds["zero_optimization"]["stage"] == 3 and ds["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert ds["train_micro_batch_size_per_gpu"] == "auto"
    assert "deepspeed" not in predict, "generation runs without ZeRO-3, which LF refuses with predict_with_generate"


def test_overrides_are_rendered_last_and_typed():
    files = render(from_text(BASE + "overrides: {neftune_noise_alpha: 5, upcast_layernorm: true}\n"), CTX)
    train = yaml.safe_load(files["train.yaml"])
    assert train["neftune_noise_alpha"] == 5 and train["upcast_layernorm"] is True


def test_speed_knobs_render_lf_keys_only_when_changed():
    default = yaml.safe_load(render(from_text(BASE), CTX)["train.yaml"])
    assert not {"packing", "neat_packing", "disable_gradient_checkpointing", "flash_attn", "enable_liger_kernel",
                "tokenized_path"} & set(default)
    knobs = "train: {neat_packing: true, gradient_checkpointing: false, flash_attn: sdpa, enable_liger_kernel: true}\n"
    ctx = RenderContext(CTX.base_dir, CTX.run_dir, Path("/project/runs/.tokenized/abc"))
    train = yaml.safe_load(render(from_text(BASE + knobs), ctx)["train.yaml"])
    assert train["neat_packing"] is True and "packing" not in train  # neat_packing implies packing in LF
    assert train["disable_gradient_checkpointing"] is True and train["flash_attn"] == "sdpa"
    assert train["enable_liger_kernel"] is True and train["tokenized_path"] == "/project/runs/.tokenized/abc"


TRICKY = st.one_of(
    st.text(),
    st.sampled_from(["a: b", "#c", "'q'", '"q"', "x\ny", "{{ t }}", "-", "- x", "*a", "&a", "!t", "yes", "No",
                     "null", "~", "1e3", "0x1F", "  pad  ", "周文王：梦见", "???", "${x}", "|", ">", "@", "`", "%"]),
)


@settings(max_examples=400, deadline=None)
@given(TRICKY)
def test_yaml_safe_filter_round_trips_any_string(value):
    if omegaconf_problem(value):  # a malformed `${`: no YAML spelling gets it through OmegaConf, so it is refused
        with pytest.raises(ValueError, match="OmegaConf"):
            yaml_value(value)
        return
    doc = f"key: {yaml_value(value)}  # comment\nnext: 1\n"
    assert yaml.safe_load(doc) == {"key": value, "next": 1}
    assert OmegaConf.to_container(OmegaConf.create(doc))["key"] == value  # how llamafactory reads it


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1))
def test_persona_with_any_text_renders_to_valid_yaml(persona):
    assume(omegaconf_problem(persona) is None)  # those are refused by the spec: test_persona_llamafactory_cannot_read
    base = from_text(BASE)
    spec = base.model_copy(update={"model": base.model.model_copy(update={"default_system": persona})})
    for name in ("train.yaml", "infer.yaml", "export.yaml", "predict.yaml"):
        assert yaml.safe_load(render(spec, CTX)[name])["default_system"] == persona


def test_persona_llamafactory_cannot_read_is_refused_at_its_field():
    with pytest.raises(SpecError) as err:
        from_text(BASE.replace("template: qwen}", "template: qwen, default_system: '价值${千金'}"))
    assert "model.default_system" in str(err.value) and "OmegaConf" in str(err.value)
    spec = from_text(BASE.replace("template: qwen}", "template: qwen, default_system: '价值${千金}'}"))
    assert yaml.safe_load(render(spec, CTX)["train.yaml"])["default_system"] == "价值${千金}", "a whole ${…} is fine"


def test_ray_engine_renders_workers_and_launches_without_torchrun():
    from zhouyi.launch import launch_env

    spec = from_text(BASE + "launch: {engine: ray, gpus: [0, 1], nnodes: 2, master_addr: 10.0.0.1}\n")
    train = yaml.safe_load(render(spec, CTX)["train.yaml"])
    assert train["ray_num_workers"] == 4
    assert train["master_addr"] == "10.0.0.1", "LF finds the head node itself only with ray[default]'s dashboard"
    env = launch_env(spec)
    assert env["USE_RAY"] == "1" and "FORCE_TORCHRUN" not in env and "NNODES" not in env
    with pytest.raises(SpecError, match="engine is torchrun"):
        from_text(BASE + "launch: {ray_num_workers: 2}\n")
    with pytest.raises(SpecError, match="cannot train on CPUs") as err:  # LF would wait for CPUs forever
        from_text(BASE + "launch: {engine: ray, device: cpu}\n")
    assert "launch" in str(err.value)
