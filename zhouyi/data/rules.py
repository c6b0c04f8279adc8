"""Cleaning rules as data: an ordered list, each with a name, what it matches and what it does.

Actions: `delete` the match, `truncate_from` the match to the end, `replace` it, or `drop_row`.
Users disable rules by name or add their own regex rules in the spec. Chinese text is never NFKC'd
(that would turn ，：；！？ into ASCII).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from zhouyi.data.rule_check import RuleAction, user_rule_problem

HAN = r"\u4e00-\u9fff"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    pattern: str
    action: RuleAction
    replacement: str = ""
    filler: bool = False  # it removes filler shaped like an interpretation, so the content guard does not apply
    user: bool = False  # a user's rule: run by the `regex` engine with a time limit on each text
    boilerplate: bool = False  # what it removes is a site's text: an answer it matches carries boilerplate (answers)

    def compiled(self):
        return _compile_user(self.pattern) if self.user else _compile(self.pattern)


_CACHE: dict[str, re.Pattern] = {}


def _compile(pattern: str) -> re.Pattern:
    if pattern not in _CACHE:
        _CACHE[pattern] = re.compile(pattern, re.S | re.M)  # `$` is a line end; `\Z` the text's end
    return _CACHE[pattern]


USER_RULE_SECONDS = 2.0  # one user rule on one text; past it the cleaning stops naming the rule and the row


class RuleTimeout(Exception):
    """A user's rule ran past USER_RULE_SECONDS on one text: its pattern backtracks catastrophically."""

    def __init__(self, rule: str):
        super().__init__(rule)
        self.rule = rule


def _compile_user(pattern: str):
    import regex

    key = "user:" + pattern
    if key not in _CACHE:
        _CACHE[key] = regex.compile(pattern, regex.S | regex.M | regex.V0)
    return _CACHE[key]


SITE_RULES: tuple[Rule, ...] = (
    Rule("mojibake", "GBK text decoded as Latin-1/UTF-8 (e.g. 'æ¢¦è§'): the row is lost, drop it",
         r"[\u00c0-\u00ff][\u0080-\u00bf]{1,2}[\u00c0-\u00ff]|\ufffd", "drop_row"),
    Rule("advert_footer", "the site's paid-reading advert and everything after it",
         r"【大师特色梦境分析】.*|以上解梦为通用解释.*", "truncate_from", filler=True, boilerplate=True),
    Rule("site_intro", "the dream site's intro template before the real text",
         r"梦见[^，。\n]{1,30}有现实的影响和反应，也有梦者的主观想象，请看下面由[(（]?[^)）]{0,20}[)）]?小编帮你整理的"
         r"梦见[^，。\n]{1,30}的详细解说吧。", "delete", filler=True, boilerplate=True),
    Rule("html", "HTML tags and entities left by the scraper", r"<[^<>\n]{1,200}>|&(?:nbsp|amp|lt|gt|quot|#\d+);",
         "replace", " ", boilerplate=True),
    Rule("url", "web addresses", r"https?://\S+|www\.[A-Za-z0-9.-]+\.[a-z]{2,}\S*", "delete", boilerplate=True),
    Rule("attribution", "site attribution in the middle of text", r"[（(]?来自周公解梦官网[)）]?", "delete", boilerplate=True),
    Rule("editor_phrases", "editor and SEO phrases",
         r"(?:^|(?<=[。\n]))[^。\n]*(?:小编|转载请注明|本文来源|更多解梦|点击查看|相关推荐)[^。\n]*[。！]?", "delete", boilerplate=True),
    Rule("navigation", "navigation lines (上一篇/下一篇/返回首页)", r"^[^\n]*(?:上一篇|下一篇|返回首页|首页\s*>)[^\n]*$",
         "delete", boilerplate=True),
    Rule("horoscope_filler", "a pasted daily-horoscope template: `梦见X意味着：…今天的你…` to the next paragraph, or, "
         "where the page goes on to a `梦见X的吉凶：` numerology section, to the page's end (horoscope advice and "
         "numerology run on over paragraphs: the whole page is the template)",
         r"梦见[^，。\n]{1,30}意味着：(?:.*?梦见[^，。\n]{1,30}的吉凶：.*\Z|.*?(?=\n\s*\n|\Z))", "delete",
         filler=True, boilerplate=True),
    Rule("numerology_filler", "name-numerology filler: `…的吉凶：…`, `凶数` lines and luck tags (`【中吉】`, `【吉多于凶】`, "
         "a tag cut open as `【大吉昌。` with its `】` on a line of its own)",
         r"梦见[^，。\n]{1,30}的吉凶：.*?(?=\n\s*\n|\Z)|^[^\n]*(?:人、地两格|凶数)[^\n]*$"
         r"|【[吉凶大中小半昌多于相抵争衡互参]{1,5}[】。]|^\s*】\s*$",
         "delete", filler=True, boilerplate=True),
    Rule("case_studies", "readers' case studies (`梦境描述：… 梦境解析：…`), dropped",
         r"梦境描述：.*?(?=梦境描述：|\Z)", "delete", filler=True, boilerplate=True),
    Rule("classical_header", "the `原版周公解梦：` header; the classical quotes after it stay", r"原版周公解梦：", "delete"),
)
SPACING_RULES: tuple[Rule, ...] = (
    Rule("doubled_mengjian", "doubled 梦见梦见", r"(梦见)(?:梦见)+", "replace", r"\1"),
    Rule("halfwidth_punct", "half-width ,;:?!() between Han characters made full-width",
         rf"(?<=[{HAN}])[,;:?!](?=[{HAN}])", "replace", "<fullwidth>"),
    Rule("space_after_punct", "spaces after Chinese punctuation", r"(?<=[，。；：！？、）」』》])[ \t\u3000\u00a0]+", "delete"),
    Rule("odd_spaces", "full-width spaces and NBSP", r"[\u3000\u00a0]+", "replace", " "),
    Rule("space_runs", "runs of spaces and spaces at line ends", r"[ \t]{2,}|[ \t]+$|^[ \t]+", "replace", ""),
    Rule("blank_lines", "runs of blank lines", r"\n{2,}", "replace", "\n"),
    Rule("citation_reattach", "a book citation that landed at the start of the next line goes back on its sentence",
         r"\n(《[^》\n]{2,10}》)", "replace", r"\1\n"),
)

WEB_NOISE_FILE = Path(__file__).resolve().parent / "web_noise.yaml"
ACTIONS = get_args(RuleAction)


def load_rules_file(path: Path, what: str = "data.clean.rules_files", user: bool = True, boilerplate: bool = False
                    ) -> tuple[Rule, ...]:
    """Rules from a YAML file (a list of {name, description, pattern, action, replacement}); anything malformed is
    a UserError naming the file and line."""
    import yaml

    from zhouyi.errors import UserError
    from zhouyi.user_files import read_yaml_node, wrong_shape

    path = Path(path)
    mend = "a rules file is a YAML list of rules (- name: ..., pattern: ..., action: ...)"
    root = read_yaml_node(path, what, mend)
    if root is None or not isinstance(root, yaml.SequenceNode):
        raise wrong_shape(path, what, "a YAML list", mend)
    rules = []
    for node in root.value:
        line = node.start_mark.line + 1
        entry = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.MappingNode) else None
        if not isinstance(entry, dict):
            raise UserError(f"{path}:{line}: a rule is a mapping with name, pattern and action")
        unknown = set(entry) - {"name", "description", "pattern", "action", "replacement"}
        if unknown or not all(isinstance(entry.get(k), str) and entry[k] for k in ("name", "pattern", "action")):
            raise UserError(f"{path}:{line}: a rule needs name, pattern and action (strings)"
                            + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else ""))
        if entry["action"] not in ACTIONS:
            raise UserError(f"{path}:{line}: action {entry['action']!r} is not one of {', '.join(ACTIONS)}")
        if problem := user_rule_problem(entry["pattern"], str(entry.get("replacement") or "")):
            raise UserError(f"{path}:{line}: rule {entry['name']}: {problem}")
        rules.append(Rule(entry["name"], str(entry.get("description") or ""), entry["pattern"], entry["action"],
                          str(entry.get("replacement") or ""), user=user, boilerplate=boilerplate))
    return tuple(rules)


WEB_NOISE: tuple[Rule, ...] = load_rules_file(WEB_NOISE_FILE, "zhouyi's web noise rules", user=False,
                                              boilerplate=True)
DEFAULT_RULES: tuple[Rule, ...] = SITE_RULES + WEB_NOISE + SPACING_RULES

_FULLWIDTH = str.maketrans({",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"})


# words that say what a dream means: a span holding the page's keyword and one of these is its interpretation
MEANING_WORDS = ("预示", "象征", "表示", "意味着", "寓意", "暗示", "代表", "主")
_ASKING = re.compile(r"(?:预示|象征|表示|意味|寓意|暗示|代表|主)着?(?:什么|啥|哪些)|什么预兆")  # a question, not an answer
# words with 主 that say nothing of a dream's meaning (主观, 主人, 公主 …): the interpretation's 主 is 主吉, 主有财 …
_NOT_MEANING = re.compile(r"主(?:观|要|人|动|意|题|持|任|角|流|张|导|席|管|页|体|机|办|编|妇|顾|见|修|治|干|力|权|宰)"
                          r"|(?:公|地|业|民|自|宗|房|店|车|买|卖|施|债|事|户|君|天|教|屋|失|做|为|物|雇|盟|神)主")


def holds_meaning(span: str, keyword: str | None) -> bool:
    """The span names the page's dream and says what it means: content, whatever else it holds."""
    if not keyword or keyword not in span:
        return False
    rest = _NOT_MEANING.sub("", _ASKING.sub("", span.replace(keyword, "")))  # `主` in `主人`, `主观` says nothing
    return any(w in rest for w in MEANING_WORDS)


@dataclass
class Audit:
    """What the rules did to one text: the spans they removed and the spans the content guard kept, by rule."""
    removed: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)


def apply_rules(text: str, rules: tuple[Rule, ...] | list[Rule], sentences_removed=None, keyword: str | None = None,
                audit: Audit | None = None) -> tuple[str | None, list[str]]:
    """Apply `rules` in order. Returns (cleaned text, or None if a drop_row rule fired; names that fired). With a
    Counter `sentences_removed`, each rule's count grows by the sentences it took out (a rule eating content shows).
    Each rule takes out only the span it matched; a span that holds the page's `keyword` and a word of meaning
    stays (unless the rule is written for such filler) and is listed in `audit.kept` as a suspicious removal."""
    audit = audit if audit is not None else Audit()
    fired = []
    for rule in rules:
        try:
            text, fired_now = _apply_one(rule, text, sentences_removed, keyword, audit)
        except TimeoutError:
            raise RuleTimeout(rule.name) from None
        if fired_now is None:
            return None, [*fired, rule.name]
        fired += fired_now
    return text.strip(), fired


def _apply_one(rule: Rule, text: str, sentences_removed, keyword: str | None, audit: Audit
               ) -> tuple[str, list[str] | None]:
    """One rule on the text: (text, [its name] when it fired, else []); (text, None) when it drops the row."""
    regex = rule.compiled()
    limit = {"timeout": USER_RULE_SECONDS} if rule.user else {}
    if not regex.search(text, **limit):
        return text, []
    guarded = not rule.filler and keyword
    before = sentence_count(text)
    if rule.action == "drop_row":
        if sentences_removed is not None:
            sentences_removed[rule.name] += before
        return text, None
    if rule.action == "truncate_from":
        match = next((m for m in regex.finditer(text, **limit)
                      if not (guarded and holds_meaning(text[m.start():], keyword))), None)
        for m in regex.finditer(text[:match.start()] if match else text, **limit):
            audit.kept.append((rule.name, m.group(0)))
        if match is None:
            return text, []
        audit.removed.append((rule.name, text[match.start():]))
        text = text[: match.start()]
    else:
        def substitute(m) -> str:
            if guarded and rule.action == "delete" and holds_meaning(m.group(0), keyword):
                audit.kept.append((rule.name, m.group(0)))
                return m.group(0)
            if rule.replacement == "<fullwidth>":
                return m.group(0).translate(_FULLWIDTH)
            if rule.action == "delete" or not rule.replacement.strip():
                audit.removed.append((rule.name, m.group(0)))
            return m.expand(rule.replacement) if rule.action == "replace" else ""

        changed = regex.sub(substitute, text, **limit)
        if changed == text and rule.action == "delete":
            return text, []
        text = changed
    if sentences_removed is not None:
        sentences_removed[rule.name] += max(0, before - sentence_count(text))
    return text, [rule.name]


def sentence_count(text: str) -> int:
    """Finished sentences: their end marks."""
    return len(re.findall(r"[。！？!?]+", text))


# `case_studies: keep_analysis`: the reader's own story goes, the site's analysis of it stays.
CASE_STUDY_ANALYSIS = Rule("case_studies", "readers' case studies: the description dropped, the analysis kept",
                           r"梦境描述：.*?(?:梦境解析：|(?=梦境描述：)|\Z)", "delete", filler=True, boilerplate=True)


def case_study_rules(rules: tuple[Rule, ...], mode: str) -> tuple[Rule, ...]:
    """`rules` with the case-study rule set to `drop` (the whole case) or `keep_analysis`."""
    if mode == "drop":
        return rules
    return tuple(CASE_STUDY_ANALYSIS if r.name == "case_studies" else r for r in rules)
