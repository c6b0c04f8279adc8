"""`zhouyi bench`: FLOPs arithmetic by hand, token counting on LLaMA-Factory's own masks, and real short
trainings of the tiny model (one run, the ladder, Ctrl-C) through LLaMA-Factory's trainer."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import zhouyi
from zhouyi.child.bench_probe import sequence_lengths
from zhouyi.layout import BENCH_MEASURED
from zhouyi.speed.flops import mfu, peak_tflops, train_flops
from zhouyi.speed.runner import summarize

QWEN25_1_5B = 1_543_714_304  # parameters, tied embeddings counted once


def test_flops_per_token_by_hand():
    # one 1024-token sequence: 6N per token, plus 12 * layers * hidden * 1024 per token for attention
    flops = train_flops(QWEN25_1_5B, 28, 1536, tokens=1024, sum_sq_seq_len=1024**2)
    assert flops == 6 * QWEN25_1_5B * 1024 + 12 * 28 * 1536 * 1024 * 1024
    # 25,000 tokens/s of 1024-token sequences on an H100 SXM is about 25% MFU, as the issue says
    per_token = flops / 1024
    assert mfu(per_token * 25_000, 1.0, peak_tflops("NVIDIA H100 80GB HBM3")) == pytest.approx(0.247, abs=0.002)
    assert peak_tflops("NVIDIA H100 PCIe") == 756 and peak_tflops("NVIDIA H200") == 989
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312 and peak_tflops("cpu") is None
    assert mfu(1e12, 1.0, None) is None


def test_sequence_lengths_from_every_mask_llamafactory_makes():
    from llamafactory.data.collator import prepare_4d_attention_mask

    ids = torch.zeros((2, 6), dtype=torch.long)
    padded = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    assert sequence_lengths(ids, padded).tolist() == [4, 6]
    # neat packing: segment ids 1, 2 for two packed rows, 0 for padding -> LF's 4-D float mask
    packed = prepare_4d_attention_mask(torch.tensor([[1, 1, 2, 2, 2, 0], [1, 1, 1, 1, 1, 1]]), torch.float32)
    assert sequence_lengths(ids, packed).tolist() == [5, 6]
    assert sequence_lengths(ids, None).tolist() == [6, 6]


def test_summarize_leaves_warmup_steps_out():
    measured = {"n_params": 1000, "n_trainable": 10, "n_layers": 2, "hidden_size": 8, "device": "cpu",
                "peak_allocated_bytes": None, "peak_rss_bytes": 2**30, "t_train_begin": 4.0,
                "steps": [{"t": 5.0, "tokens": 100, "sum_sq": 10_000}, {"t": 9.0, "tokens": 200, "sum_sq": 20_000},
                          {"t": 10.0, "tokens": 500, "sum_sq": 50_000}, {"t": 11.0, "tokens": 800, "sum_sq": 80_000}]}
    result = summarize("x", "what", measured, warmup=2)
    assert result.status == "ok" and result.tokens_per_s == 300.0 and result.tokens_measured == 600
    assert result.first_step_s == 5.0 and result.load_s == 4.0 and result.peak_memory_gib == 1.0
    assert result.mean_seq_len == 100.0 and result.mfu is None
    assert summarize("x", "what", measured, warmup=4).status == "failed"


@pytest.mark.slow
def test_bench_measures_a_random_init_run_and_says_where_a_steps_time_goes(tiny_project):
    from zhouyi.speed.profile import OUTSIDE, breakdown

    out = tiny_project / "profiled"
    result = zhouyi("bench", "tiny-cpu", "--random-init", "--steps", "5", "--warmup", "1", "--profile", "3",
                    "-o", str(out), cwd=tiny_project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    (row,) = report["results"]
    assert row["status"] == "ok" and row["device"] == "cpu" and row["tokens_per_s"] > 0
    assert row["n_params"] == sum_params(out / "random-init-model")
    assert 0 < row["mean_seq_len"] <= 256  # tiny-cpu's cutoff
    assert row["first_step_s"] >= row["load_s"] > 0
    assert (out / "random-init-model" / "model.safetensors").is_file()
    assert "| tiny-cpu | ok |" in result.stdout
    assert report["versions"]["llamafactory"] == "0.9.5"

    # the profile of steps 2-4
    profile = row["profile"]
    rows = dict(breakdown(profile))
    spans = sum(v for k, v in rows.items() if k != OUTSIDE)
    assert 0 < spans <= profile["wall_ms"] / 3 * 1.001, "what the profiler's spans cover fits in the wall time"
    measured_ms = 1000 * row["tokens_measured"] / row["tokens_per_s"]  # the bench's own clock: steps 2-5
    assert profile["wall_ms"] < measured_ms, "the 3 profiled steps (2-4) lie inside the bench's measured steps"
    assert rows["backward (autograd nodes; with checkpointing, the forward's recomputation too)"] > 0
    assert rows["optimizer step and zeroing"] > 0 and rows["data loading and collation (DataLoader)"] > 0
    assert 0 <= rows[OUTSIDE] < profile["wall_ms"] / 3, "the Python between spans is what no span covers"
    assert profile["ops_launched"] > 100 and any(op["name"] == "aten::mm" for op in profile["ops"])
    report = (out / "bench.md").read_text()
    assert "Where a step's time goes (cpu, 3 profiled steps after the warm-up)" in report
    assert "| `aten::mm` |" in report and "| **wall** |" in report


def test_profile_breakdown_by_hand():
    from zhouyi.speed.profile import OTHER, OUTSIDE, breakdown

    profile = {"steps": 2, "wall_ms": 100.0, "top_level": [
        {"name": "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", "ms": 10.0},
        {"name": "Optimizer.step#AdamW.step", "ms": 30.0}, {"name": "aten::linear", "ms": 20.0},
        {"name": "CheckpointFunction", "ms": 20.0}, {"name": "cudaDeviceSynchronize", "ms": 4.0}]}
    rows = dict(breakdown(profile))
    assert rows["data loading and collation (DataLoader)"] == 5 and rows["optimizer step and zeroing"] == 15
    assert rows["forward and other operators (aten, checkpointed layers)"] == 20 and rows[OTHER] == 2
    assert rows[OUTSIDE] == 8 and sum(rows.values()) == 50


def sum_params(model_dir) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


@pytest.mark.slow
def test_ladder_runs_every_rung_it_can_and_skips_liger_on_cpu(tiny_project):
    out = tiny_project / "ladder"
    result = zhouyi("bench", "tiny-cpu", "--ladder", "--steps", "3", "--warmup", "1", "-o", str(out),
                    "--write-profile", "fast.yaml", cwd=tiny_project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("zhouyi.child.bench_probe --serve") == 1, "LLaMA-Factory imported once for the rungs"
    for name in ("baseline", "full"):  # a forked rung's time to load counts the import it was spared, as a fresh one's
        measured = json.loads((out / name / BENCH_MEASURED).read_text())
        assert measured["t_train_begin"] > measured["import_s"] > 0, measured
    rows = {r["name"]: r for r in json.loads((out / "bench.json").read_text())["results"]}
    assert list(rows) == ["baseline", "packing", "no-checkpointing", "liger", "micro-batch-4", "micro-batch-8",
                          "micro-batch-16", "compile", "full"]
    assert rows["liger"]["status"] == "skipped" and rows["liger"]["note"] == "needs a GPU"
    for name in ("baseline", "packing", "no-checkpointing", "micro-batch-4", "compile", "full"):
        assert rows[name]["status"] == "ok", rows[name]
    micro = [rows[f"micro-batch-{n}"] for n in (4, 8, 16)]
    ran = [r for r in micro if r["status"] == "ok"]
    assert micro[:len(ran)] == ran, "the micro-batch rungs that ran are the first ones"
    before = [rows["no-checkpointing"], *ran]  # liger is skipped on CPU: each rung is weighed against the last that ran
    faster = [b["tokens_per_s"] > a["tokens_per_s"] for a, b in zip(before[:-1], ran, strict=True)]
    assert all(faster[:-1]), "a micro-batch rung runs only after the one before it was faster"
    if len(ran) < len(micro):
        assert not faster[-1], "the ladder stopped at the first micro-batch that was not faster"
        stop = f"micro-batches stopped improving at {ran[-1]['name']} (ok)"
        assert all(r["status"] == "skipped" and r["note"] == stop for r in micro[len(ran):])
    assert rows["compile"]["settings"]["torch_compile"] is True
    assert "torch_compile: true" in (out / "compile" / "train.yaml").read_text()

    fastest = max((r for r in rows.values() if r["status"] == "ok" and r["name"] != "full"),
                  key=lambda r: r["tokens_per_s"])
    profile = (tiny_project / "fast.yaml").read_text()
    assert f"the fastest rung, {fastest['name']}" in profile and "measured on cpu" in profile
    assert 'base: "tiny-cpu"' in profile
    shown = zhouyi("show", "fast.yaml", cwd=tiny_project)
    batch = fastest["settings"]["per_device_train_batch_size"]
    assert shown.returncode == 0 and f"per_device_train_batch_size: {batch}" in shown.stdout
    assert zhouyi("validate", "fast.yaml", cwd=tiny_project).returncode == 0
    # packing fills every 256-token block, so sequences get longer than unpacked rows
    assert rows["packing"]["mean_seq_len"] > rows["baseline"]["mean_seq_len"]
    assert rows["packing"]["settings"]["packing"] is True and rows["baseline"]["settings"]["packing"] is False
    assert rows["micro-batch-4"]["settings"]["per_device_train_batch_size"] == 4
    assert rows["full"]["n_trainable"] == rows["full"]["n_params"] > rows["baseline"]["n_trainable"]
    train = (out / "no-checkpointing" / "train.yaml").read_text()
    assert "disable_gradient_checkpointing: true" in train and "packing: true" in train
    assert "tokenized_path:" in train
    # rungs that tokenize alike share one cache: packing tokenized once, the next packed rungs load it
    assert "Tokenized dataset is saved" in (out / "packing" / "train.log").read_text()
    assert "Loaded tokenized dataset" in (out / "no-checkpointing" / "train.log").read_text()


@pytest.mark.slow
def test_sigterm_ends_the_ladder_and_every_worker(tiny_project):
    out = tiny_project / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "zhouyi", "bench", "tiny-cpu", "--ladder", "--steps", "200",
                             "--warmup", "1", "-o", str(out)], cwd=tiny_project, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "baseline" / "train.log").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 143 and "Traceback" not in output, output[-3000:]
    assert "bench rung packing" not in output, "no rung starts after the signal"
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if _alive(pid)] == [], "the measured training is gone too"


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_write_profile_is_checked_before_any_run(project):
    from tests.conftest import cli

    alone = cli("bench", "tiny-cpu", "--write-profile", "fast.yaml", cwd=project)
    assert alone.returncode == 2 and "add --ladder" in alone.stderr
    (project / "fast.yaml").write_text("mine: true\n")
    taken = cli("bench", "tiny-cpu", "--ladder", "--write-profile", "fast.yaml", cwd=project)
    assert taken.returncode == 2 and "--write-profile" in taken.stderr and "fast.yaml" in taken.stderr
    assert (project / "fast.yaml").read_text() == "mine: true\n" and not (project / "runs").exists()
