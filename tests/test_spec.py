from pathlib import Path

import pytest
import yaml

from tests.conftest import cli
from zhouyi.errors import SpecError, UserError
from zhouyi.load import from_text, load, preset_names, to_yaml
from zhouyi.spec import JobSpec

MINIMAL = """
name: t
model: {model_name_or_path: m, template: qwen}
data: {datasets: [{name: d, file_name: d.json}]}
"""


def problems(text: str) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        from_text(text)
    return dict(info.value.problems)


def test_presets_load_and_the_tutorial_job_is_exact():
    assert {"zhougong-lora", "tiny-cpu"} <= set(preset_names())
    spec = load("zhougong-lora").spec
    assert spec.model.model_name_or_path == "Qwen/Qwen2.5-1.5B-Instruct"
    assert (spec.model.source, spec.model.template) == ("modelscope", "qwen")
    assert spec.data.names("train") == ["zhougong"]
    assert spec.method.finetuning_type == "lora"
    assert spec.launch.gpus == [0, 1, 2, 3] and spec.train.precision == "bf16"
    tiny = load("tiny-cpu").spec
    assert tiny.launch.device == "cpu" and tiny.model.source == "local"


def test_resolved_spec_round_trips():
    spec = load("zhougong-lora").spec
    assert JobSpec.model_validate(yaml.safe_load(to_yaml(spec))) == spec


def test_minimal_spec_gets_lf_defaults():
    spec = from_text(MINIMAL)
    assert spec.method.finetuning_type == "lora" and spec.method.lora_rank == 8
    assert spec.data.datasets[0].resolved_columns.prompt == "instruction"


def test_exponent_floats_are_numbers():
    spec = from_text(MINIMAL + "train: {learning_rate: 1e-4}\n")
    assert spec.train.learning_rate == pytest.approx(1e-4)


def test_every_problem_reported_at_once_with_paths_and_suggestions():
    found = problems("""
name: t
model: {model_name_or_path: m, template: qwen, tempalte: x}
data: {datasets: [{name: d, file_name: d.json}]}
method: {finetuning_type: lora, lora_rank: 0, lora_rnak: 3}
train: {learning_rate: -1, lora_alpha: 3, num_train_epochs: fast}
""")
    assert "did you mean 'template'" in found["model.tempalte"]
    assert "did you mean 'lora_rank'" in found["method.lora_rnak"]
    assert "greater than 0" in found["method.lora_rank"]
    assert "greater than 0" in found["train.learning_rate"]
    assert "'method.lora_alpha'" in found["train.lora_alpha"]
    assert "fast" in found["train.num_train_epochs"]


def test_wrong_types_are_refused_not_coerced():
    found = problems(MINIMAL + "method: {finetuning_type: lora, lora_rank: '8'}\n")
    assert "method.lora_rank" in found


def test_bf16_on_a_cpu_only_spec_is_an_error():
    found = problems(MINIMAL + "launch: {device: cpu}\n")
    assert "bf16 needs a GPU" in found["train.precision"]


def test_overrides_may_not_shadow_spec_fields():
    found = problems(MINIMAL + "overrides: {learning_rate: 0.1, neftune_noise_alpha: 5}\n")
    assert list(found) == ["overrides.learning_rate"]
    assert "set train.learning_rate" in found["overrides.learning_rate"]


@pytest.mark.parametrize("overrides, field, message", [
    ('{"lr_x\\nlearning_rate": 1}', "overrides", "not a LLaMA-Factory argument name"),  # a newline smuggles a key
    ('{"#weight_decay": 0.1}', "overrides", "not a LLaMA-Factory argument name"),  # it would vanish as a comment
    ("{weight_decay: .inf}", "overrides", "not a finite number"),
    ("{loraplus_lr_ratio: .nan}", "overrides", "not a finite number"),
    ("{report_to: [none, .nan]}", "overrides", "not a finite number"),
    ("{run_name: '${oops'}", "overrides.run_name", "OmegaConf"),
])
def test_overrides_that_would_write_other_yaml_are_refused(overrides, field, message):
    found = problems(MINIMAL + f"overrides: {overrides}\n")
    assert field in found and message in found[field], found


def test_a_dollar_brace_anywhere_is_refused_at_its_field():
    found = problems(MINIMAL.replace("template: qwen", "template: 'qwen${'"))
    assert "model.template" in found and "OmegaConf" in found["model.template"]


@pytest.mark.parametrize("addr", ["node1\nrm -rf ~", "node1;reboot", "$(whoami)", "a b", "-node"])
def test_master_addr_is_a_host_or_an_address(addr):
    found = problems(MINIMAL + f"launch: {{nnodes: 2, master_port: 29500, master_addr: {addr!r}}}\n")
    assert "launch.master_addr" in found, found
    for good in ("10.0.0.1", "fe80::1", "node-1.cluster.local"):
        spec = from_text(MINIMAL + f"launch: {{nnodes: 2, master_port: 29500, master_addr: '{good}'}}\n")
        assert spec.launch.master_addr == good


def test_early_stopping_and_the_best_checkpoint_need_an_eval_split():
    for field in ("early_stopping_steps: 2", "load_best_model_at_end: true"):
        found = problems(MINIMAL + f"train: {{{field}}}\n")
        assert "needs an eval split" in found[f"train.{field.split(':')[0]}"]
    assert from_text(MINIMAL + "train: {early_stopping_steps: 2, val_size: 0.1}\n").train.early_stopping_steps == 2


@pytest.mark.parametrize("launch, message", [  # one spec per rule, each breaking only that rule
    ("{device: cpu, gpus: [0]}", "gpus listed but device is cpu"),
    ("{gpus: [0, 0]}", "gpus has repeated ids: [0, 0]"),
    ("{gpus: [0, 1], nproc_per_node: 4}", "nproc_per_node=4 is more than the 2 gpus listed"),
    ("{nnodes: 2, node_rank: 2, master_port: 29500}", "node_rank=2 must be below nnodes=2"),
    ("{nnodes: 2}", "nnodes > 1 needs a fixed master_port"),
    ("{ray_num_workers: 2}", "ray_num_workers is set but engine is torchrun"),
    ("{engine: ray, device: cpu}", "engine: ray cannot train on CPUs"),
])
def test_launch_consistency(launch, message):
    found = problems(MINIMAL + f"launch: {launch}\n")
    assert message in found["launch"], found


def test_unknown_finetuning_type_and_deepspeed_stage():
    found = problems(MINIMAL + "method: {finetuning_type: lorra}\nlaunch: {deepspeed: zero4}\n")
    assert "method" in found and "launch.deepspeed" in found


def test_missing_spec_file_and_unknown_preset(tmp_path: Path):
    with pytest.raises(UserError, match="spec file not found"):
        load(str(tmp_path / "nope.yaml"))
    with pytest.raises(UserError, match="did you mean 'tiny-cpu'"):
        load("tiny-cpy")


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(UserError, match="not valid YAML"):
        from_text("name: [unclosed")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        from_text("- a\n- b\n")


def test_a_key_given_twice_or_an_alias_bomb_is_refused_not_silently_resolved(tmp_path: Path):
    twice = MINIMAL + "train: {learning_rate: 2.0e-4}\ntrain: {cutoff_len: 512}\n"
    with pytest.raises(UserError, match="the key 'train' is given twice"):
        from_text(twice)  # YAML would keep the second block and drop the learning rate unseen
    bomb = "name: b\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9^9 leaves if it were expanded
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(UserError, match="its aliases expand to more than 100,000 values"):
        from_text(bomb)
    reused = ("name: r\nmodel: {model_name_or_path: m, template: qwen}\ndata:\n  datasets:\n"
              "    - {name: d, file_name: d.json, columns: &cols {prompt: q, response: a}}\n"
              "    - {name: e, file_name: e.json, columns: *cols, split: eval}\n")
    assert from_text(reused).data.datasets[1].columns.prompt == "q", "an anchor reused is fine"
    (tmp_path / "dup.yaml").write_text(twice)
    result = cli("render", str(tmp_path / "dup.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "given twice" in result.stderr and "Traceback" not in result.stderr


def test_speed_knobs_that_cannot_run_are_refused_at_the_field():
    liger = problems(MINIMAL + "train: {enable_liger_kernel: true, precision: fp32}\nlaunch: {device: cpu}\n")
    assert "need a GPU" in liger["train.enable_liger_kernel"]
    neat = problems(MINIMAL + "train: {neat_packing: true, flash_attn: fa2, per_device_train_batch_size: 2}\n")
    assert "batch size 1" in neat["train.per_device_train_batch_size"]
    managed = problems(MINIMAL + "overrides: {disable_gradient_checkpointing: true}\n")
    assert "train.gradient_checkpointing" in managed["overrides.disable_gradient_checkpointing"]


def test_misspelt_choice_gets_a_did_you_mean():
    found = problems(MINIMAL + "launch: {deepspeed: zer02, master_port: 70000}\n")
    assert "did you mean 'zero2'?" in found["launch.deepspeed"]
    assert "less than or equal to 65535" in found["launch.master_port"]
    multi = problems(MINIMAL + "launch: {nnodes: 2, node_rank: 2}\n")
    assert "node_rank=2 must be below nnodes=2" in multi["launch"]


def test_a_key_of_another_method_says_so():
    found = problems(MINIMAL + "method: {finetuning_type: full, lora_rank: 8}\n")
    assert "finetuning_type full takes no 'lora_rank'" in found["method.lora_rank"]
