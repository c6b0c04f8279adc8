"""Entry points zhouyi runs as `python -m zhouyi.child.<name>` in a child process (zhouyi.launch.child). Unlike the
rest of zhouyi they may import torch, transformers, llamafactory or a hub client at the top: they run apart so the
CLI stays light, can be stopped after a timeout, or measure from inside LLaMA-Factory's trainer."""
