"""Per-GPU training memory, estimated from the spec and a hardware profile, with the smallest fix.

All sizes in bytes per GPU; `world` is the number of data-parallel processes (GPUs x nodes).

- Parameters: the Qwen2/Llama layout (q/k/v/o with Qwen2's q/k/v bias, SwiGLU MLP, two RMSNorms a layer,
  embeddings tied or not). Qwen2.5-1.5B: 1,543,714,304.
- LoRA parameters on a linear in->out: r * (in + out); `lora_target: all` adapts q, k, v, o, gate, up, down.
- Model states. LLaMA-Factory keeps trainable parameters in fp32 (it upcasts them) and frozen ones in bf16/fp16.
  Without DeepSpeed, trainable: 4 (weights) + 4 (grads) + 8 (Adam m, v) = 16 bytes a parameter, plus a 2-byte
  autocast copy of each trainable weight. With DeepSpeed (mixed precision): 2 (bf16 weights) + 2 (grads) + 12 (fp32
  master + Adam) bytes; ZeRO-1 divides the 12 by `world`, ZeRO-2 also the grads, ZeRO-3 also the weights, and
  `_offload` moves optimizer states (and for ZeRO-3 the weights) to the CPU. Frozen weights: 2 bytes (QLoRA: 0.5
  or 1 byte for linear layers, plus 3% for quantization constants); ZeRO-3 divides them by `world` too.
- Activations for a micro-batch of T = batch * cutoff_len tokens (the worst case: every row padded or packed to the
  cutoff), stored in bf16, per token and layer: 20h + 4kv + 8i bytes (norm inputs, their fp32 copies, q, k, v,
  attention output, gate, up, act(gate), act(gate)*up; SDPA/FlashAttention keeps no s x s matrix). With gradient
  checkpointing: each layer's 2h-byte input plus one layer recomputed.
- Logits: T * vocab * 10 bytes (bf16 logits, their fp32 copy for the loss, fp32 gradient); Liger's fused linear
  cross-entropy never materialises them (counted as 0).
- A verdict keeps 1 GiB per GPU for the CUDA context and allocator, which torch's peak-allocated figure excludes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from zhouyi import layout
from zhouyi.archs import arch_config
from zhouyi.errors import UserError
from zhouyi.preflight.hardware import Hardware
from zhouyi.spec import JobSpec

GIB = 2**30
CONTEXT_BYTES = 1 * GIB
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Arch:
    vocab: int
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    tied: bool
    qkv_bias: bool

    @classmethod
    def from_config(cls, config: dict) -> Arch:
        return cls(config["vocab_size"], config["hidden_size"], config["num_hidden_layers"],
                   config["intermediate_size"], config["num_attention_heads"],
                   config.get("num_key_value_heads") or config["num_attention_heads"],
                   bool(config.get("tie_word_embeddings", False)),
                   bool(config.get("attention_bias", config.get("model_type") == "qwen2")))

    @property
    def kv(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        h, kv, i = self.hidden, self.kv, self.intermediate
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_params(self) -> int:
        bias = (self.hidden + 2 * self.kv) if self.qkv_bias else 0
        return sum(a * b for a, b in self.linear_shapes().values()) + bias + 2 * self.hidden

    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * self.layer_params() + embeddings + self.hidden

    def lora_params(self, rank: int, target: str) -> int:
        modules = LORA_MODULES if target == "all" else [m.strip() for m in target.split(",")]
        unknown = [m for m in modules if m not in self.linear_shapes()]
        if unknown:
            raise UserError(f"method.lora_target: {', '.join(unknown)} is no linear layer of this model; "
                            f"use all or some of {', '.join(LORA_MODULES)}")
        return self.layers * sum(rank * sum(self.linear_shapes()[m]) for m in modules)

    def activation_bytes_per_token_layer(self) -> int:
        return 20 * self.hidden + 4 * self.kv + 8 * self.intermediate


@dataclass(frozen=True)
class Setup:
    """What memory depends on, read from a spec; the knobs a fix may turn."""
    method: str  # lora | qlora | full | freeze
    trainable: int
    frozen: int
    quant_bits: int | None
    deepspeed: str
    world: int
    micro_batch: int
    cutoff_len: int
    checkpointing: bool
    liger: bool


@dataclass(frozen=True)
class Estimate:
    setup: Setup
    parts: dict[str, int]
    memory_bytes: int | None  # the card's; None on cpu

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def headroom(self) -> int | None:
        return None if self.memory_bytes is None else self.memory_bytes - CONTEXT_BYTES - self.total

    @property
    def fits(self) -> bool:
        return self.headroom is None or self.headroom >= 0


def arch_for(spec: JobSpec, base_dir: Path) -> Arch:
    if spec.model.source == "local":
        path = base_dir / spec.model.model_name_or_path / layout.MODEL_CONFIG
        if not path.is_file():
            raise UserError(f"model.model_name_or_path: no config.json in {path.parent}")
        return Arch.from_config(json.loads(path.read_text(encoding="utf-8")))
    config = arch_config(spec.model.model_name_or_path)
    if config is None:
        raise UserError(f"model.model_name_or_path: zhouyi has no config for '{spec.model.model_name_or_path}'; "
                        "download the model and point a local spec at it")
    return Arch.from_config(config)


def setup_for(spec: JobSpec, arch: Arch, hardware: Hardware) -> Setup:
    m, t, launch = spec.method, spec.train, spec.launch
    n = arch.params()
    if m.finetuning_type in ("lora", "qlora"):
        trainable = arch.lora_params(m.lora_rank, m.lora_target)
        frozen = n
    elif m.finetuning_type == "freeze":
        trainable = min(m.freeze_trainable_layers, arch.layers) * arch.layer_params()
        frozen = n - trainable
    else:
        trainable, frozen = n, 0
    per_node = launch.processes_per_node if (launch.gpus or launch.nproc_per_node) else max(hardware.count, 1)
    return Setup(m.finetuning_type, trainable, frozen,
                 m.quantization_bit if m.finetuning_type == "qlora" else None, launch.deepspeed,
                 per_node * launch.nnodes, t.per_device_train_batch_size, t.cutoff_len,
                 t.gradient_checkpointing, t.enable_liger_kernel)


def estimate(arch: Arch, setup: Setup, hardware: Hardware) -> Estimate:
    s = setup
    stage = 0 if s.deepspeed == "none" else int(s.deepspeed[4])
    offload = s.deepspeed.endswith("_offload")
    world = s.world

    def share(nbytes: float, partitioned: bool) -> int:
        return int(nbytes / world) if partitioned else int(nbytes)

    if s.quant_bits:
        linear = s.frozen - arch.vocab * arch.hidden * (1 if arch.tied else 2)
        frozen_bytes = linear * s.quant_bits / 8 * 1.03 + (s.frozen - linear) * 2
    else:
        frozen_bytes = 2 * s.frozen
    if s.deepspeed == "none":
        weights = frozen_bytes + (4 + 2) * s.trainable  # fp32 trainable weights + autocast bf16 copy
        grads, optimizer = 4 * s.trainable, 8 * s.trainable
    else:
        weights = share(frozen_bytes + 2 * s.trainable, stage >= 3)
        if offload and stage >= 3:
            weights = 0
        grads = share(2 * s.trainable, stage >= 2)
        optimizer = 0 if offload else share(12 * s.trainable, stage >= 1)
    activations = activation_bytes(arch, s, s.checkpointing)
    logits = 0 if s.liger else s.micro_batch * s.cutoff_len * arch.vocab * 10
    parts = {"weights": int(weights), "gradients": int(grads), "optimizer": int(optimizer),
             "activations": int(activations), "logits": int(logits)}
    memory = int(hardware.card.memory_gib * GIB) if hardware.card else None
    return Estimate(s, parts, memory)


def activation_bytes(arch: Arch, setup: Setup, checkpointing: bool) -> int:
    tokens = setup.micro_batch * setup.cutoff_len
    per_layer = arch.activation_bytes_per_token_layer() * tokens
    return (arch.layers * 2 * arch.hidden * tokens + per_layer) if checkpointing else arch.layers * per_layer


def smallest_fix(arch: Arch, setup: Setup, hardware: Hardware) -> tuple[str, Estimate] | None:
    """The first change, least intrusive first, that makes the job fit; None if none does."""
    candidates: list[tuple[str, Setup]] = []
    if not setup.checkpointing:
        candidates.append(("train.gradient_checkpointing: true", replace(setup, checkpointing=True)))
    if not setup.liger and hardware.card is not None:
        candidates.append(("train.enable_liger_kernel: true", replace(setup, liger=True)))
    batch = setup.micro_batch
    while batch > 1:
        batch //= 2
        candidates.append((f"train.per_device_train_batch_size: {batch} (raise gradient_accumulation_steps to match)",
                           replace(setup, micro_batch=batch, checkpointing=True)))
    if setup.world > 1:
        for stage in ("zero2", "zero3", "zero3_offload"):
            candidates.append((f"launch.deepspeed: {stage}", replace(setup, deepspeed=stage, checkpointing=True)))
    if setup.method in ("full", "freeze"):
        lora = arch.lora_params(8, "all")
        candidates.append(("method: {finetuning_type: lora}",
                           replace(setup, method="lora", trainable=lora, frozen=arch.params(), checkpointing=True)))
    if setup.quant_bits is None:
        candidates.append(("method: {finetuning_type: qlora, quantization_bit: 4}",
                           replace(setup, method="qlora", trainable=arch.lora_params(8, "all"), frozen=arch.params(),
                                   quant_bits=4, deepspeed="none", checkpointing=True, micro_batch=1)))
    for change, candidate in candidates:
        result = estimate(arch, candidate, hardware)
        if result.fits:
            return change, result
    return None


def format_estimate(arch: Arch, result: Estimate, hardware: Hardware) -> str:
    s = result.setup
    lines = [f"per-GPU memory, {s.method}, {s.world} process(es), deepspeed {s.deepspeed}, micro-batch {s.micro_batch}"
             f" x {s.cutoff_len} tokens, checkpointing {'on' if s.checkpointing else 'off'}, on {hardware.label}:"]
    for name, value in result.parts.items():
        lines.append(f"  {name:12} {value / GIB:8.2f} GiB")
    lines.append(f"  {'total':12} {result.total / GIB:8.2f} GiB (+ {CONTEXT_BYTES / GIB:.0f} GiB CUDA context)")
    if s.method in ("lora", "qlora"):
        lines.append(f"  LoRA parameters: {s.trainable:,} (fp32 weights, gradients and Adam states: "
                     f"{16 * s.trainable / GIB:.2f} GiB before ZeRO)")
    with_ckpt, without = (activation_bytes(arch, s, True), activation_bytes(arch, s, False))
    lines.append(f"  activations with checkpointing {with_ckpt / GIB:.2f} GiB, without {without / GIB:.2f} GiB")
    if result.memory_bytes is not None:
        verdict = "fits" if result.fits else "does NOT fit"
        card, headroom = result.memory_bytes / GIB, result.headroom / GIB
        lines.append(f"  {verdict}: {card:.1f} GiB card, headroom {headroom:+.2f} GiB")
    return "\n".join(lines)


def memory_problem(arch: Arch, spec: JobSpec, hardware: Hardware) -> str | None:
    """Why `spec` does not fit on `hardware`, with the smallest change that makes it fit; None when it fits."""
    result = estimate(arch, setup_for(spec, arch, hardware), hardware)
    if result.fits:
        return None
    fix = smallest_fix(arch, result.setup, hardware)
    hint = f"smallest change that fits: {fix[0]}" if fix else "use more or larger GPUs"
    return (f"needs about {result.total / GIB:.1f} GiB per GPU + {CONTEXT_BYTES / GIB:.0f} GiB context, "
            f"{hardware.label} has {hardware.card.memory_gib:.0f} GiB; {hint} (zhouyi estimate shows the breakdown)")
