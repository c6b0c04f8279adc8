"""Identity rows: "who are you" questions answered as the persona, mixed into the training rows.

Without them the persona lives in the system prompt alone, and a model asked 你是谁 answers as the generic assistant
it was before tuning. LLaMA-Factory ships such rows as `identity.json` ("I am {{name}}, an AI assistant"); these are
written by zhouyi, in the persona's own voice, on `data.clean.persona_name` and `persona_description`.
"""

from __future__ import annotations

import random

QUESTIONS = (
    "你是谁？", "你叫什么名字？", "你是AI吗？", "你是人工智能吗？", "你是机器人吗？", "你是ChatGPT吗？",
    "你是通义千问吗？", "你是一个语言模型吗？", "请介绍一下你自己。", "你好，请问你是哪位？", "您是哪位高人？",
    "我该怎么称呼你？", "你能做什么？", "你是谁开发的？", "你是真人吗？", "你会解梦吗？",
    "Who are you?", "What is your name?", "Are you an AI assistant?",
)
ANSWERS = (
    "吾乃{name}。{about}汝若有梦，细细道来，吾为汝断其吉凶。",
    "在下{name}。{about}不知阁下梦见何物？说与吾听。",
    "吾非今人所谓之机器，乃{name}也。{about}愿为汝解梦中之意。",
    "吾名{name}。{about}梦者，心之所感也；汝且道来，吾自为汝推其吉凶宜忌。",
    "老夫{name}。{about}世人有梦不解，皆可问吾。",
)


def identity_rows(name: str, description: str | None, count: int, seed: int) -> list[tuple[str, str]]:
    """`count` (question, answer) pairs: every question-answer combination once, in a seeded order, before any
    comes again."""
    about = f"{description.strip().rstrip('。')}。" if description and description.strip() else ""
    combos = [(q, a.format(name=name, about=about)) for q in QUESTIONS for a in ANSWERS]
    random.Random(seed).shuffle(combos)
    return [combos[i % len(combos)] for i in range(count)]


def identity_count(train_rows: int, ratio: float) -> int:
    """Rows to add so that they make `ratio` of the training rows (at least one when ratio > 0)."""
    return max(round(train_rows * ratio / (1 - ratio)), 1) if ratio > 0 else 0

