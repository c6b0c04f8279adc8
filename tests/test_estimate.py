"""Memory estimate against numbers worked out by hand for Qwen2.5-1.5B, and hardware profiles as input."""

import json

import pytest

from tests.conftest import cli
from zhouyi.errors import UserError
from zhouyi.launch import launch_env
from zhouyi.load import from_text, load
from zhouyi.preflight.estimate import Arch, estimate, setup_for, smallest_fix
from zhouyi.preflight.hardware import hardware_problems, parse_hardware

N = 1_543_714_304  # Qwen2.5-1.5B parameters (the model card's 1.54B; embeddings tied)
LORA_R8_ALL = 28 * 8 * (2 * (1536 + 1536) + 2 * (1536 + 256) + 3 * (1536 + 8960))  # q,o + k,v + gate,up,down
ACT = 20 * 1536 + 4 * 256 + 8 * 8960  # bytes per token per layer
SPEC = """
name: t
model: {{model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct, template: qwen}}
data: {{datasets: [{{name: d, file_name: d.json}}]}}
method: {method}
train: {{cutoff_len: 1024, per_device_train_batch_size: {batch}, gradient_checkpointing: {ckpt}}}
launch: {launch}
"""


def job(method="{finetuning_type: lora}", batch=1, ckpt="true", launch="{gpus: [0]}"):
    return from_text(SPEC.format(method=method, batch=batch, ckpt=ckpt, launch=launch))


def run(spec, hardware="h100"):
    hw = parse_hardware(hardware)
    arch = Arch.from_config(json.loads((_archs() / "qwen2.5-1.5b-instruct.json").read_text()))
    return arch, estimate(arch, setup_for(spec, arch, hw), hw), hw


def _archs():
    from importlib import resources

    return resources.files("zhouyi.archs")


def test_parameter_counts_match_the_model_and_llamafactory():
    arch, result, _ = run(job())
    assert arch.params() == N
    assert result.setup.trainable == LORA_R8_ALL == 9_232_384  # LLaMA-Factory logs "trainable params: 9,232,384"


def test_lora_one_gpu_by_hand():
    _, result, _ = run(job(batch=1, ckpt="true"))
    tokens = 1024
    assert result.parts == {
        "weights": 2 * N + 6 * LORA_R8_ALL,  # frozen bf16 + fp32 LoRA weights and their autocast copy
        "gradients": 4 * LORA_R8_ALL,
        "optimizer": 8 * LORA_R8_ALL,
        "activations": 28 * 2 * 1536 * tokens + ACT * tokens,  # checkpointed inputs + one layer recomputed
        "logits": tokens * 151936 * 10,
    }
    assert result.fits and result.headroom > 70 * 2**30


def test_full_fine_tuning_and_zero_stages_by_hand():
    _, ddp, _ = run(job(method="{finetuning_type: full}", ckpt="false"))
    assert (ddp.parts["weights"], ddp.parts["gradients"], ddp.parts["optimizer"]) == (6 * N, 4 * N, 8 * N)
    assert ddp.parts["activations"] == 28 * ACT * 1024
    four = "{gpus: [0, 1, 2, 3], deepspeed: %s}"
    _, zero2, _ = run(job(method="{finetuning_type: full}", launch=four % "zero2"), "4xh100")
    assert zero2.setup.world == 4
    assert (zero2.parts["weights"], zero2.parts["gradients"], zero2.parts["optimizer"]) == (2 * N, N // 2, 3 * N)
    _, zero3, _ = run(job(method="{finetuning_type: full}", launch=four % "zero3_offload"), "4xh100")
    assert (zero3.parts["weights"], zero3.parts["gradients"], zero3.parts["optimizer"]) == (0, N // 2, 0)


def test_verdict_and_the_smallest_change_that_fits():
    arch, full, hw = run(job(method="{finetuning_type: full}", ckpt="false"), "4090")
    assert not full.fits  # 18 bytes a parameter is 26 GiB before any activation
    change, fixed = smallest_fix(arch, full.setup, hw)
    assert change == "method: {finetuning_type: lora}" and fixed.fits
    arch, lora, hw = run(job(batch=16, ckpt="false"), "4090")
    assert not lora.fits
    change, fixed = smallest_fix(arch, lora.setup, hw)
    assert change.startswith("train.per_device_train_batch_size: 8") and fixed.fits  # logits dominate at 16k tokens


def test_hardware_profiles_parse_and_refuse_unknown_cards():
    assert parse_hardware("4x4090").count == 4 and parse_hardware("h100").count == 1
    assert parse_hardware("cpu").card is None
    for bad in ("4xfoo", "0xh100", "x"):
        with pytest.raises(UserError, match="count>x<card"):
            parse_hardware(bad)


def test_hardware_problems_name_the_field():
    tutorial = load("zhougong-lora").spec
    assert hardware_problems(tutorial, parse_hardware("4x4090")) == []
    t4 = dict(hardware_problems(tutorial, parse_hardware("2xt4")))
    assert "no bf16" in t4["train.precision"] and "gpu id 3" in t4["launch.gpus"]
    # DeepSpeed on one GPU needs torchrun; zhouyi launches it so rather than asking for force_torchrun
    one_gpu = job(launch="{gpus: [0], deepspeed: zero2}")
    assert hardware_problems(one_gpu, parse_hardware("h100")) == []
    assert launch_env(one_gpu)["FORCE_TORCHRUN"] == "1" and launch_env(one_gpu)["NPROC_PER_NODE"] == "1"
    zero3 = from_text(SPEC.format(method="{finetuning_type: lora}", batch=1, ckpt="true",
                                   launch="{gpus: [0, 1], deepspeed: zero3}") + "overrides: {use_unsloth: true}\n")
    assert "unsloth" in dict(hardware_problems(zero3, parse_hardware("2xh100")))["overrides.use_unsloth"]


def test_estimate_and_validate_on_the_command_line(tmp_path):
    result = cli("estimate", "zhougong-lora", "--hardware", "4x4090", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["fits"] and report["parameters"] == N and report["problems"] == []
    small = cli("estimate", "zhougong-lora", "--hardware", "1xt4", cwd=tmp_path)
    assert small.returncode == 1 and "no bf16" in small.stdout
    bad = cli("estimate", "zhougong-lora", "--hardware", "9xfoo", cwd=tmp_path)
    assert bad.returncode == 2 and "cards:" in bad.stderr


def test_validate_with_hardware_reports_what_stops_the_spec_there(project):
    result = cli("validate", "--json", "--hardware", "h100", "tiny-cpu", cwd=project)
    assert result.returncode == 2
    (report,) = json.loads(result.stdout)
    errors = {p["where"]: p["message"] for p in report["problems"] if p["level"] == "error"}
    assert "set device: cuda" in errors["launch.device"]
    fits = cli("validate", "--hardware", "cpu", "tiny-cpu", cwd=project)
    assert fits.returncode == 0, fits.stdout


def _report(tmp_path, rungs):
    settings = {"cutoff_len": 1024, "packing": True, "gradient_checkpointing": False, "flash_attn": "sdpa",
                "enable_liger_kernel": True, "finetuning_type": "lora", "gradient_accumulation_steps": 1}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"results": [
        {"name": f"micro-batch-{b}", "status": status, "device": "NVIDIA H200" if status == "ok" else None,
         "peak_memory_gib": peak, "settings": {**settings, "per_device_train_batch_size": b}}
        for b, status, peak in rungs]}))
    return path


def test_the_largest_micro_batch_comes_from_measured_peaks(tmp_path):
    from zhouyi.preflight.hardware import CARDS
    from zhouyi.preflight.measured import largest_fitting, measured_points

    card = CARDS["h200"]
    points, too_big, settings = measured_points(_report(tmp_path, [(4, "ok", 10.0), (8, "ok", 18.0),
                                                                   (16, "oom", None)]), card)
    assert points == [(4, 10.0 * 2**30), (8, 18.0 * 2**30)] and too_big == 16 and settings["cutoff_len"] == 1024
    fit = largest_fitting(points, None, card, 1.0, "r", settings)  # 2 GiB a row, 2 GiB fixed: 64 rows = 130 GiB
    assert fit.micro_batch == 32 and fit.predicted_bytes == pytest.approx(66 * 2**30)
    assert largest_fitting(points, too_big, card, 1.0, "r", settings).micro_batch == 8, "an OOM bounds it"
    one = largest_fitting(points[:1], None, card, 3 * 2**30, "r", settings)  # one point: the estimate's slope
    assert one.micro_batch == 32 and one.predicted_bytes == pytest.approx((10 + 3 * 28) * 2**30)


def test_estimate_measured_names_the_card_it_needs(project, tmp_path):
    report = _report(tmp_path, [(1, "ok", 5.5), (4, "ok", 14.5)])
    result = cli("estimate", "zhougong-lora", "--hardware", "h200", "--measured", str(report), cwd=project)
    assert "measured on NVIDIA H200" in result.stdout and "largest micro-batch that fits 140 GiB" in result.stdout
    other = cli("estimate", "zhougong-lora", "--hardware", "4x4090", "--measured", str(report), cwd=project)
    assert other.returncode == 2 and "not NVIDIA GeForce RTX 4090" in other.stderr
