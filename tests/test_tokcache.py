"""The tokenized-dataset cache key changes with everything that changes the tokens, and nothing else."""

from zhouyi.load import from_text
from zhouyi.tokcache import cache_key, tokenized_dir

SPEC = """
name: t
model: {{model_name_or_path: models/tok, source: local, template: qwen}}
data: {{datasets: [{{name: d, file_name: d.json}}]}}
train: {{cutoff_len: {cutoff}, tokenized_cache: {cache}, learning_rate: {lr}}}
"""


def spec(cutoff=256, cache="true", lr=0.001):
    return from_text(SPEC.format(cutoff=cutoff, cache=cache, lr=lr))


def test_key_follows_data_tokenizer_and_settings(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.json").write_text('[{"instruction": "a", "input": "", "output": "b"}]')
    (tmp_path / "models" / "tok").mkdir(parents=True)
    (tmp_path / "models" / "tok" / "tokenizer.json").write_text("{}")
    key = cache_key(spec(), tmp_path)
    assert cache_key(spec(lr=0.5), tmp_path) == key, "training-only settings share the cache"
    assert cache_key(spec(cutoff=512), tmp_path) != key
    (tmp_path / "models" / "tok" / "tokenizer.json").write_text('{"v": 2}')
    key2 = cache_key(spec(), tmp_path)
    assert key2 != key
    (tmp_path / "data" / "d.json").write_text('[{"instruction": "a", "input": "", "output": "c"}]')
    assert cache_key(spec(), tmp_path) != key2
    assert tokenized_dir(spec(), tmp_path).parent == (tmp_path / "runs" / ".tokenized").resolve()
    assert tokenized_dir(spec(cache="false"), tmp_path) is None
