"""Child process of `zhouyi export --check`: greedy answers to the same questions from an exported model, through one
runtime. Job and answer: zhouyi.child.jobs.GreedyAnswers.

- transformers: the merged safetensors, each prompt encoded by LLaMA-Factory's own template code (as training and
  `zhouyi eval` encode it), stopped at the ids LLaMA-Factory's prediction stops at.
- llama.cpp: the GGUF, each prompt made by the chat template inside the GGUF (as llama.cpp's server and LM Studio
  make it) and tokenised by llama.cpp, stopped where llama.cpp stops (its end-of-generation tokens).

Each answer carries its prompt's token ids, so a template or tokenizer that differs shows before any answer does;
`bare_prompt` is the prompt of a question asked with no system prompt, where the persona must be.
"""

from __future__ import annotations

import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import GreedyAnswers

N_CTX = 2048  # llama.cpp's context: a question and its answer, never the model's whole window


def transformers_answers(job: dict) -> tuple[list[dict], str]:
    import torch
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=job["template"],
                                                                       default_system=job.get("persona")))
    extra = getattr(tokenizer, "additional_special_tokens_ids", None)
    if not isinstance(extra, list):  # transformers 5, as LLaMA-Factory's prediction reads it
        extra = tokenizer.convert_tokens_to_ids([str(t) for t in getattr(tokenizer, "_extra_special_tokens", [])])
    stop = list(dict.fromkeys([tokenizer.eos_token_id, *(i for i in extra if i != -1)]))
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32).eval()
    def encode(user: str, system: str | None = None) -> list[int]:
        return template.encode_oneturn(tokenizer, [{"role": "user", "content": user},
                                                   {"role": "assistant", "content": ""}], system)[0]

    answers = []
    for system, user in job["messages"]:
        prompt = encode(user, system)
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=job["max_new_tokens"], do_sample=False,
                                 eos_token_id=stop, pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
        ended = bool(out) and out[-1] in stop
        answers.append({"prompt_ids": prompt, "text": tokenizer.decode(out, skip_special_tokens=True),
                        "ended": ended, "tokens": len(out) - ended})
    return answers, tokenizer.decode(encode("梦"))


def without_weight_repacking() -> None:
    """Load models with llama.cpp's CPU "extra buffer types" off: on AVX-512 CPUs its repacked kernels for quantized
    weights (q8_0, q6_k, q4_k_m, ...) crash decoding (SIGSEGV) for small models such as the tiny test model, seen
    with llama-cpp-python 0.3.36. The plain kernels give the same greedy answers, a little slower."""
    import llama_cpp.llama_cpp as api

    defaults = api.llama_model_default_params
    if getattr(defaults, "zhouyi_plain", False):
        return

    def plain():
        params = defaults()
        params.use_extra_bufts = False
        return params

    plain.zhouyi_plain = True
    api.llama_model_default_params = plain


def llama_cpp_answers(job: dict) -> tuple[list[dict], str]:
    import llama_cpp
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    without_weight_repacking()
    llm = llama_cpp.Llama(job["model"], n_ctx=N_CTX, seed=0, verbose=False)
    meta = llm.metadata
    chat = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        meta.get("tokenizer.chat_template", ""))
    vocab = llm._model.vocab  # noqa: SLF001 - llama.cpp's own end-of-generation test needs it
    bos_text = llm.detokenize([llm.token_bos()], special=True).decode() if llm.token_bos() >= 0 else ""
    eos_text = llm.detokenize([llm.token_eos()], special=True).decode() if llm.token_eos() >= 0 else ""
    add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"

    def render(messages: list[dict]) -> str:
        return chat.render(messages=messages, add_generation_prompt=True, bos_token=bos_text, eos_token=eos_text)

    answers = []
    for system, user in job["messages"]:
        text = render(([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}])
        prompt = llm.tokenize(text.encode(), add_bos=False, special=True)
        if add_bos and (not prompt or prompt[0] != llm.token_bos()):
            prompt = [llm.token_bos(), *prompt]
        llm.reset()
        out = []
        for token in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            out.append(token)
            if len(out) == job["max_new_tokens"]:
                break
        ended = len(out) < job["max_new_tokens"]
        answers.append({"prompt_ids": prompt, "text": llm.detokenize(out).decode("utf-8", errors="replace"),
                        "ended": ended, "tokens": len(out)})
    llm.close()
    # what a client that sends no system prompt gets (llama.cpp's server, LM Studio): the default system prompt
    return answers, render([{"role": "user", "content": "梦"}])


def answer(job: GreedyAnswers) -> dict:
    ask = llama_cpp_answers if job.runtime == "llama.cpp" else transformers_answers
    answers, bare = ask(job.model_dump())
    return {"answers": answers, "bare_prompt": bare}


if __name__ == "__main__":
    sys.exit(serve(GreedyAnswers, answer))
