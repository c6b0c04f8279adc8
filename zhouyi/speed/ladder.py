"""The ablation ladder: LLaMA-Factory's example LoRA config, then one speed change per rung.

Each rung is a patch of spec fields applied on top of the last rung that ran; a rung that cannot run
here (Liger without a GPU) or fails is reported and the next rung builds on the one before it. The micro-batch
rungs stop at the first that is no faster than the one before it (or does not fit): a bigger one would not be
either. The last rung is full fine-tuning with the fastest LoRA rung's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rung:
    name: str
    what: str
    train: dict = field(default_factory=dict)  # patch of the spec's `train` section
    method: dict | None = None  # replaces the spec's `method` section
    overrides: dict | None = None  # patch of the spec's `overrides` (LLaMA-Factory keys zhouyi has no field for)
    needs_gpu: bool = False
    needs_module: str | None = None
    micro_batch: bool = False  # one of the micro-batch rungs, which stop when speed or memory stops improving


# LLaMA-Factory's examples/train_lora/qwen3_lora_sft.yaml: batch 1, accumulation 8, no packing,
# gradient checkpointing on (its default), SDPA attention.
BASELINE = Rung(
    "baseline",
    "LLaMA-Factory example LoRA config (batch 1 x accumulation 8, no packing, checkpointing, SDPA)",
    train={"per_device_train_batch_size": 1, "gradient_accumulation_steps": 8, "packing": False,
           "neat_packing": False, "gradient_checkpointing": True, "flash_attn": "sdpa", "enable_liger_kernel": False},
)

LADDER = (
    BASELINE,
    Rung("packing", "+ packing rows into cutoff_len blocks", train={"packing": True}),
    Rung("no-checkpointing", "+ gradient checkpointing off", train={"gradient_checkpointing": False}),
    Rung("liger", "+ Liger kernels (fused RMSNorm, SwiGLU, RoPE, linear cross-entropy)",
         train={"enable_liger_kernel": True}, needs_gpu=True, needs_module="liger_kernel"),
    Rung("micro-batch-4", "+ micro-batch 4 x accumulation 2 (same tokens per optimizer step)",
         train={"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}, micro_batch=True),
    Rung("micro-batch-8", "+ micro-batch 8 x accumulation 1 (same tokens per optimizer step)",
         train={"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}, micro_batch=True),
    Rung("micro-batch-16", "+ micro-batch 16 x accumulation 1 (twice the tokens per optimizer step)",
         train={"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}, micro_batch=True),
    Rung("compile", "+ torch.compile (HF Trainer's torch_compile, which LLaMA-Factory passes on; the first steps "
         "compile, so the warm-up carries it)", overrides={"torch_compile": True}),
)

FULL = Rung("full", "full fine-tuning with the fastest LoRA rung's settings", method={"finetuning_type": "full"})
