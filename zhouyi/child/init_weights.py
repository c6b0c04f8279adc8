"""Fill a model folder that holds only config.json with random weights, once, on the GPU if there is one.

`zhouyi bench --random-init` measures a model whose weights this machine does not have. Building
the weights once and saving them makes every measured run load the same model in seconds, where
LLaMA-Factory's `train_from_scratch` would initialise 1.5B parameters on the CPU in every run.

    python -m zhouyi.child.init_weights MODEL_DIR [SEED]
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder, seed = argv[0], int(argv[1]) if len(argv) > 1 else 0
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(folder)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    print(f"random weights: {sum(p.numel() for p in model.parameters()):,} parameters ({model.dtype}) in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
