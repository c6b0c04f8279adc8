"""Runs one benchmarked training: LLaMA-Factory's own `run_exp` with a measuring callback added.

`zhouyi train` launches `llamafactory-cli train`; a benchmark also needs per-step times, token
counts and peak device memory from inside the trainer, which only a TrainerCallback sees. So this
module calls the entry point `llamafactory-cli train` calls (llamafactory.train.tuner.run_exp) with
one callback and writes what it measured as JSON.

    python -m zhouyi.child.bench_probe train.yaml measured.json [--profile STEPS --after WARMUP]

With --profile, torch.profiler records STEPS steps after the first WARMUP (zhouyi.speed.profile sums them up).

    python -m zhouyi.child.bench_probe --serve

imports LLaMA-Factory once (7 to 10 seconds here, more beside CUDA's libraries) and then makes one measured run for
each job line on stdin (`{"argv": [...], "log": ..., "cwd": ...}`, argv as above), each in a forked copy of itself
(zhouyi.child.forked), answering `{"code": N}` on stdout: a ladder's rungs pay the import once. A run's clock still
starts where a fresh process's would: at its start, less the import this process measured.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

START = time.perf_counter()  # a forked run moves it back by the import it did not pay (serve)
IMPORT_S: float | None = None  # in a forked run: the import that serve paid for it, counted in its times


def sequence_lengths(input_ids, attention_mask):
    """Non-padding length of each row: from a 2-D mask, the diagonal of a 4-D (packed) mask, or full rows."""
    import torch

    if attention_mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1], device=input_ids.device)
    if attention_mask.dim() == 4:  # neat packing: a token attends to itself unless it is padding
        diagonal = attention_mask[:, 0].diagonal(dim1=-2, dim2=-1)
        attended = diagonal if diagonal.dtype == torch.bool else diagonal == 0
        return attended.sum(dim=-1)
    return (attention_mask != 0).sum(dim=-1)


def make_callback(out_path: str, profile_steps: int = 0, after: int = 1):
    import torch
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class Probe(TrainerCallback):
        def __init__(self):
            self.tokens = self.sum_sq = None
            self.steps: list[dict] = []
            self.model_info: dict = {}
            self.profiler = None
            self.profile: dict | None = None
            self.paused = 0.0  # seconds spent starting and reading the profiler: not the training's

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            config = model.config
            self.model_info = {
                "t_train_begin": time.perf_counter() - START,  # imports, data and model loading took this long
                "import_s": IMPORT_S,
                "n_params": sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n),
                "n_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "n_layers": config.num_hidden_layers,
                "hidden_size": config.hidden_size,
            }
            device = args.device
            self.tokens = torch.zeros((), dtype=torch.float64, device=device)
            self.sum_sq = torch.zeros((), dtype=torch.float64, device=device)
            model.register_forward_pre_hook(self._count, with_kwargs=True)
            if cuda:
                torch.cuda.reset_peak_memory_stats()

        def _count(self, module, args, kwargs):
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            if input_ids is None or not module.training:
                return
            with torch.profiler.record_function("zhouyi.count_tokens"):
                lengths = sequence_lengths(input_ids, kwargs.get("attention_mask")).to(torch.float64)
                self.tokens += lengths.sum()
                self.sum_sq += (lengths * lengths).sum()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.steps.append({"t": time.perf_counter() - START - self.paused, "tokens": self.tokens.item(),
                               "sum_sq": self.sum_sq.item()})
            started = time.perf_counter()
            if profile_steps and len(self.steps) == after:
                activities = [torch.profiler.ProfilerActivity.CPU] + (
                    [torch.profiler.ProfilerActivity.CUDA] if cuda else [])
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()
            elif self.profiler is not None and len(self.steps) == after + profile_steps:
                self.profiler.__exit__(None, None, None)
                from zhouyi.speed.profile import summarize_events

                wall_ms = (self.steps[-1]["t"] - self.steps[after - 1]["t"]) * 1000
                self.profile = summarize_events(self.profiler.events(), wall_ms, profile_steps,
                                                torch.cuda.get_device_name() if cuda else "cpu")
                self.profiler = None
            self.paused += time.perf_counter() - started

        def on_train_end(self, args, state, control, **kwargs):
            self.write()

        def write(self):
            result = {
                **self.model_info,
                "device": torch.cuda.get_device_name() if cuda else "cpu",
                "steps": self.steps,
                "peak_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
                "peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "versions": {"torch": torch.__version__},
                "profile": self.profile,
            }
            tmp = out_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(result, fh, indent=1)
            os.replace(tmp, out_path)

    return Probe()


def main(argv: list[str]) -> int:
    config, out_path, *rest = argv
    profile_steps = int(rest[rest.index("--profile") + 1]) if "--profile" in rest else 0
    after = int(rest[rest.index("--after") + 1]) if "--after" in rest else 1
    sys.argv = [sys.argv[0], config]  # run_exp reads the YAML path from argv, as llamafactory-cli does
    from llamafactory.train.tuner import run_exp

    run_exp(callbacks=[make_callback(out_path, profile_steps, after)])
    return 0


def serve() -> int:
    """`--serve`: one import, then a forked measured run per job line; see the module's docstring."""
    from zhouyi.child import forked

    forked.before_imports()
    import llamafactory.train.tuner  # noqa: F401 - the import each run would pay

    import_s = time.perf_counter() - START
    safe = forked.copy_is_safe()
    answers = os.fdopen(os.dup(1), "w")  # the answers' own descriptor: a library that prints writes to stderr
    os.dup2(2, 1)
    try:
        for line in sys.stdin:
            job = json.loads(line)

            def measured(argv=job["argv"]) -> None:
                global START, IMPORT_S
                START, IMPORT_S = time.perf_counter() - import_s, import_s
                main(argv)

            code = forked.run(measured, job["log"], job["cwd"],
                              None if safe else ["-m", "zhouyi.child.bench_probe", *job["argv"]])
            answers.write(json.dumps({"code": code}) + "\n")
            answers.flush()
    except KeyboardInterrupt:
        return 130  # between runs: the parent sent the user's Ctrl-C on, and says so itself
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main(sys.argv[1:]))
