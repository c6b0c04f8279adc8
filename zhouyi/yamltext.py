"""YAML as LLaMA-Factory reads it (OmegaConf): a loader that reads `1e-4` as a number, any value rendered as one
YAML node that reads back identical, and the `${` check OmegaConf needs."""

from __future__ import annotations

import math
import re

import yaml

_INF = float("inf")
_NUMBER_LIKE = re.compile(r"^\s*[-+.0-9]")


MAX_NODES = 100_000  # a spec is a few hundred values; aliases inside aliases can make a few lines billions


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` / `5e3` as floats, as LLaMA-Factory's OmegaConf loader does, and refuses
    what would silently lose or explode a user's values: a key given twice (YAML keeps the last and drops the
    first block unseen) and aliases nested so deep that the document expands past MAX_NODES values (an alias
    bomb). Plain anchors and aliases, a columns map written once and reused, are fine."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise yaml.composer.ComposerError(None, None, f"its aliases expand to more than {MAX_NODES:,} values; "
                                              "write the values out", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                continue  # an unhashable key: SafeLoader's own error says so
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _expanded_size(node, sizes: dict[int, int]) -> int:
    """How many values `node` is once every alias is expanded (a node reached again costs its size again); an
    alias inside its own anchor counts as endless."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = MAX_NODES + 1  # while counting: a node that contains itself never ends
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_NODES + 1)
    return sizes[id(node)]


def load_yaml_text(text: str):
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_value(value) -> str:
    """A single-line YAML node for `value` (plain when that is safe, double-quoted otherwise).

    Strings with `: `, `#`, quotes, newlines, `{{`, leading indicators, `yes`/`no`/`null`-alikes or
    non-ASCII all come back unchanged through `yaml.safe_load` and OmegaConf (what LLaMA-Factory uses).
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot render non-finite number {value!r}")
    if isinstance(value, str):
        problem = omegaconf_problem(value)
        if problem:
            raise ValueError(problem)
        plain = _dump(value, style=None)
        # Number-like text is quoted: loaders disagree on it (OmegaConf reads `0E0` as a float).
        if "\n" not in plain and not _NUMBER_LIKE.match(value) and yaml.safe_load(plain) == value:
            return plain
        return _dump(value, style='"')
    return _dump(value, style=None)


def omegaconf_problem(text: str) -> str | None:
    """Why LLaMA-Factory could not read `text` from its YAML, or None. It reads configs with OmegaConf, which takes
    `${...}` as an interpolation and fails on a malformed one (`${`, `${a b}`); no quoting or escaping avoids
    that (an escaped `\\${` would reach LLaMA-Factory with its backslash)."""
    if "${" not in text:
        return None
    from omegaconf import OmegaConf

    try:
        OmegaConf.to_container(OmegaConf.create({"key": text}))
    except Exception as exc:  # omegaconf's grammar errors share no public base class
        return (f"LLaMA-Factory reads its YAML with OmegaConf, which cannot read this text's `${{` "
                f"({type(exc).__name__}); write it without `${{`")
    return None


def _dump(value, style) -> str:
    text = yaml.safe_dump(
        value, default_style=style, default_flow_style=True, allow_unicode=True, width=_INF, sort_keys=False
    )
    return text.removesuffix("\n...\n").removesuffix("\n")
