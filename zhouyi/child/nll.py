"""Child process of `zhouyi eval`'s forgetting check: a model's mean negative log-likelihood per answer token of
given (prompt, answer) pairs, a forward pass only. Each pair is encoded by LLaMA-Factory's own template code, as
training and prediction encode it, with no system prompt beyond the template's own; a LoRA adapter is applied with
PEFT. The base and the tuned model are read in one child (one import). Job and answer: zhouyi.child.jobs.Nll."""

from __future__ import annotations

import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import Nll, NllModel


def nll(job: Nll) -> dict:
    per_model, counts = [], []
    for keys in job.models:
        values, counts = _nll(keys, job.pairs)
        per_model.append(values)
    return {"nll": per_model, "tokens": counts}


def _nll(keys: NllModel, pairs: list[tuple[str, str]]) -> tuple[list[float], list[int]]:
    import torch
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(keys.model)
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=keys.template))
    model = AutoModelForCausalLM.from_pretrained(keys.model, dtype=torch.float32)
    if keys.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, keys.adapter)
    model.eval()
    values, counts = [], []
    for prompt, answer in pairs:
        prompt_ids, answer_ids = template.encode_oneturn(tokenizer, [{"role": "user", "content": prompt},
                                                                     {"role": "assistant", "content": answer}])
        ids = torch.tensor([prompt_ids + answer_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]
        losses = torch.nn.functional.cross_entropy(logits.float(), ids[0, len(prompt_ids):], reduction="none")
        values.append(round(float(losses.mean()), 5))
        counts.append(len(answer_ids))
    return values, counts


if __name__ == "__main__":
    sys.exit(serve(Nll, nll))
