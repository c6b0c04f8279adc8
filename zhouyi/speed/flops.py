"""Model FLOPs per token and utilisation (MFU), with the peak table they are measured against.

Training FLOPs follow the PaLM paper's appendix B: 6·N per token for the weight matmuls (forward 2N,
backward 4N) plus 12·L·d·T per token for attention scores and values over a sequence of T tokens.
N counts every base-model parameter once (tied embeddings act as the LM head). The 6·N convention
is kept for LoRA too, although frozen weights need no weight gradients (true work is nearer 4·N),
so LoRA and full fine-tuning MFU read on one scale. Recomputation under gradient checkpointing is
hardware work, not model work, and is not counted.
"""

from __future__ import annotations

# Dense bf16 peak TFLOP/s (datasheets, without sparsity). Matched against torch's device name.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM
    "A100": 312.0,
    "RTX 4090": 165.0,
}


def peak_tflops(device_name: str) -> float | None:
    """Peak for a CUDA device name such as 'NVIDIA H100 80GB HBM3'; None when unknown or CPU."""
    for key, peak in PEAK_BF16_TFLOPS.items():  # most specific keys come first
        if key.lower() in device_name.lower():
            return peak
    return None


def train_flops(n_params: int, n_layers: int, hidden: int, tokens: int, sum_sq_seq_len: float) -> float:
    """Model FLOPs of training on `tokens` tokens whose sequences' squared lengths sum to `sum_sq_seq_len`."""
    return 6.0 * n_params * tokens + 12.0 * n_layers * hidden * sum_sq_seq_len


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    if not peak or seconds <= 0:
        return None
    return flops / seconds / (peak * 1e12)
