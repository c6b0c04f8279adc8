"""Verbs that get a base model: download (ModelScope / Hugging Face, checked and recorded), tiny-model."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import load_spec, spec_args, verb


def add_verbs(sub) -> None:
    p = verb(sub, "download", cmd_download, "fetch SPEC's model (ModelScope / Hugging Face), check it, train from it")
    spec_args(p)
    p.add_argument("--cache-dir", help="the hub's cache folder (default: the hub's own)")
    p.add_argument("--offline", action="store_true", help="use the cache only; never touch the network")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="only files matching (repeatable), e.g. '*.safetensors' '*.json' 'merges.txt'")
    p.add_argument("--timeout", type=float, default=600, help="seconds before an unanswering hub is given up")

    p = verb(sub, "tiny-model", cmd_tiny_model, "build the tiny random Qwen2 model used by the demo and tests")
    p.add_argument("dir")
    p.add_argument("--corpus", default="data/zhougong_demo.json", help="alpaca JSON to train the tokenizer on")
    p.add_argument("--seed", type=int, default=0)


def cmd_download(args) -> int:
    from zhouyi.download import fetch, remember

    spec = load_spec(args).spec
    folder = fetch(spec, Path.cwd(), Path(args.cache_dir).resolve() if args.cache_dir else None, args.offline,
                   args.timeout, args.include)
    if spec.model.source != "local":
        remember(Path.cwd(), spec, folder)
    print(f"{spec.model.model_name_or_path}@{spec.model.model_revision}: complete at {folder}")
    return 0


def cmd_tiny_model(args) -> int:
    from zhouyi.tiny import build_tiny_model, corpus_from_alpaca

    corpus_file = Path(args.corpus)
    corpus = corpus_from_alpaca(corpus_file) if corpus_file.is_file() else None
    out = build_tiny_model(Path(args.dir), corpus, seed=args.seed)
    print(f"tiny model written to {out} (corpus: {corpus_file if corpus else 'built-in'})")
    return 0
