"""`python -m zhouyi.child.smoke DIR [QUESTION]`: load exported weights with plain transformers (no LLaMA-Factory, as
another tool would) and generate a few tokens with the model's own chat template. Exit 0 when it speaks."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zhouyi.child.smoke")
    parser.add_argument("model_dir")
    parser.add_argument("question", nargs="?", default="梦见蛇是什么意思？")
    parser.add_argument("--system", help="the persona, as the Modelfile's SYSTEM gives it")
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args(argv)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.question}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**prompt, max_new_tokens=args.tokens, do_sample=False)
    new = output[0, prompt["input_ids"].shape[1]:]
    text = tokenizer.decode(new, skip_special_tokens=True)
    print(f"smoke check: {len(new)} new tokens from {args.model_dir}: {text!r}")
    return 0 if len(new) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
