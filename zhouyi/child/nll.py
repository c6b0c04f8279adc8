"""Child process of `zhouyi eval`'s forgetting check: a model's mean negative log-likelihood per answer token of
given (prompt, answer) pairs, a forward pass only. Each pair is encoded by LLaMA-Factory's own template code, as
training and prediction encode it, with no system prompt beyond the template's own; a LoRA adapter is applied with
PEFT. Job and answer: zhouyi.child.jobs.Nll."""

from __future__ import annotations

import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import Nll


def nll(job: Nll) -> dict:
    import torch
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job.model)
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=job.template))
    model = AutoModelForCausalLM.from_pretrained(job.model, dtype=torch.float32)
    if job.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, job.adapter)
    model.eval()
    values, counts = [], []
    for prompt, answer in job.pairs:
        prompt_ids, answer_ids = template.encode_oneturn(tokenizer, [{"role": "user", "content": prompt},
                                                                     {"role": "assistant", "content": answer}])
        ids = torch.tensor([prompt_ids + answer_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]
        losses = torch.nn.functional.cross_entropy(logits.float(), ids[0, len(prompt_ids):], reduction="none")
        values.append(round(float(losses.mean()), 5))
        counts.append(len(answer_ids))
    return {"nll": values, "tokens": counts}


if __name__ == "__main__":
    sys.exit(serve(Nll, nll))
