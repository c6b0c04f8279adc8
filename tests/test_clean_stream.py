"""Cleaning as a stream: inputs read a row at a time, pages kept on disk between passes, rows written piece by piece
— and the result the same as cleaning a list in memory (the scale itself is measured by bench/bench_scale.py)."""

import hashlib
import json
import random
import tracemalloc
from collections import Counter

import pytest

from zhouyi.data import boilerplate as learnt
from zhouyi.data.clean import CleanOptions, clean, keyword
from zhouyi.data.neardup import clusters
from zhouyi.data.readers import BLOCK, Record, read_rows
from zhouyi.data.spill import Column, Spill
from zhouyi.errors import UserError
from zhouyi.files import commit, written_by_zhouyi

DREAMS = ["老虎", "大海", "飞机", "祖母", "红伞", "石桥", "稻田", "金鱼", "古琴", "雪山", "麻雀", "灯笼"]
MEANINGS = ["预示近期运势上扬，宜把握良机。", "象征内心渴望安宁，需多陪伴家人。", "表示事业将遇贵人相助，不必忧虑。",
            "意味着财运平稳，切忌冒进投资。", "提醒梦者注意身体，作息要规律。"]


def site_pages(count: int, seed: int = 3) -> list[Record]:
    """A site of `count` pages: a heading, a byline with a date, each dream's meaning, a shared closing line (the
    site's templates), and every tenth page a near copy of another."""
    rng = random.Random(seed)
    pages = []
    for n in range(count):
        k = DREAMS[n % len(DREAMS)] + "与" + DREAMS[(n * 7 + 3) % len(DREAMS)] + str(n)
        body = "".join(rng.sample(MEANINGS, 3))
        if n % 10 == 9:
            body = pages[n - 5].text.split("\n")[2].replace(keyword(pages[n - 5].title), k)
        pages.append(Record(f"site.jsonl#{n}", f"梦见{k}", f"解梦专栏\n小编 2024-0{1 + n % 9}-1{n % 10} 整理\n"
                            f"梦见{k}，{body}\n喜欢本站请收藏，每天更新梦境解析。"))
    return pages


class Once:
    """An iterable that can be read once only, as a reader's stream is."""

    def __init__(self, items):
        self.items, self.used = items, False

    def __iter__(self):
        assert not self.used, "the records were read twice"
        self.used = True
        return iter(self.items)


def test_a_stream_read_once_cleans_as_the_same_records_in_a_list():
    pages = site_pages(60)
    opts = CleanOptions.of(eval_ratio=0.2, seed=5)
    from_list, from_stream = clean(pages, [], opts), clean(Once(pages), [], opts)
    assert from_stream.train == from_list.train and from_stream.eval == from_list.eval
    assert from_stream.report == from_list.report
    patterns = {t["pattern"] for t in from_list.report["templates"]}
    assert {"解梦专栏", "喜欢本站请收藏，每天更新梦境解析。"} <= patterns  # the site's lines were learnt ...
    assert all("小编" not in row["output"] and "收藏" not in row["output"] for row in from_list.train)  # ... and gone
    assert from_list.report["drops"].get("near duplicate") or from_list.report["near_duplicate_clusters"]


def test_rows_are_written_piece_by_piece_exactly_as_one_json_dump():
    result = clean(site_pages(30), [], CleanOptions.of(eval_ratio=0.0, persona_as="instruction"))
    assert "".join(result.json_chunks("train")) == json.dumps(result.train, ensure_ascii=False, indent=1) + "\n"
    assert "".join(result.json_chunks("eval")) == json.dumps([], indent=1) + "\n"
    assert result.count("eval") == 0 and result.count("train") == len(result.train)


def test_templates_counted_by_hash_are_the_ones_a_count_of_the_text_finds():
    pages = [(r.source, keyword(r.title), r.text) for r in site_pages(80, seed=11)]
    found = learnt.learn(pages, 5, 0.2, 4)
    units, headings = Counter(), Counter()  # the definition, counted on the text itself
    for _, k, text in pages:
        lines = [line for line in text.split("\n") if line.strip()]
        units.update({learnt.mask(u, k) for line in lines for u in [line, *learnt.pieces(line)]})
        headings.update({learnt.mask(line, k) for line in lines if not learnt._SENTENCE_END.search(line)})
    need = max(5, 0.2 * len(pages))
    expected = {p: n for p, n in units.items() if n >= need and learnt._chars(p) >= 4}
    expected |= {p: n for p, n in headings.items() if n >= need}
    assert {p: t.pages for p, t in found.by_site["site.jsonl"].items()} == expected
    assert "小编〈N〉整理" in expected  # a byline whose date varies is one template once masked


def test_near_duplicates_read_from_disk_cluster_as_texts_in_memory():
    texts = [r.text for r in site_pages(120, seed=2)]
    spill = Spill()
    for n, text in enumerate(texts):
        spill.append((n, text))
    lazy = Column(spill, 1, list(range(len(texts) - 1, -1, -1)))  # read in reverse: any order of rows works
    assert clusters(lazy, 0.8) == clusters(texts[::-1], 0.8)
    assert len(set(clusters(texts, 0.8))) < len(texts)  # there are near copies to find


def test_a_json_lines_file_is_read_a_row_at_a_time(tmp_path):
    path = tmp_path / "big.jsonl"
    row = {"title": "梦见大海", "text": "梦见大海，预示胸怀开阔，前途远大。" * 40}
    path.write_text("".join(json.dumps({**row, "n": n}, ensure_ascii=False) + "\n" for n in range(20_000)),
                    encoding="utf-8")
    assert path.stat().st_size > 20 << 20
    tracemalloc.start()
    try:
        count = sum(isinstance(item, Record) for item in read_rows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    # held whole, its text alone would take more than the file's 20 MiB; a block and a row at a time, a few MiB
    assert peak < path.stat().st_size / 3, f"reading kept {peak / 2**20:.0f} MiB: the file was held whole"


def test_a_gb18030_file_larger_than_a_block_decodes_across_the_block_edge(tmp_path):
    row = json.dumps({"title": "梦见龙", "text": "梦见龙腾云驾雾，主大吉。"}, ensure_ascii=False) + "\n"
    encoded = (row * (BLOCK // len(row.encode("gb18030")) + 50)).encode("gb18030")
    edge = next(at for at in range(BLOCK - 8, BLOCK) if encoded[at] >= 0x81)
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(encoded[:edge] + b" " * (BLOCK - 1 - edge) + encoded[edge:])  # a character starts at the edge
    records = [item for item in read_rows(path) if isinstance(item, Record)]
    assert len(records) == encoded.count(b"\n") and records[-1].text == "梦见龙腾云驾雾，主大吉。"


def test_a_bad_byte_past_the_first_block_is_named_at_its_offset(tmp_path):
    row = json.dumps({"title": "梦见龙", "text": "梦见龙腾云驾雾，主大吉。"}) + "\n"  # ASCII: \\u escapes
    data = bytearray((row * (3 * BLOCK // len(row))).encode())
    at = 2 * BLOCK + 12_345
    data[at] = 0xFF  # neither UTF-8 nor GB18030 can read it
    path = tmp_path / "bad.jsonl"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"bad\.jsonl: cannot decode .* at offset {at}\)"):
        next(read_rows(path))


def test_a_file_written_from_pieces_is_committed_and_known_as_zhouyis(tmp_path):
    target = tmp_path / "rows.json"
    pieces = (f"{n}: 梦见第{n}个梦。\n" for n in range(50_000))
    commit({target: pieces})
    text = target.read_text(encoding="utf-8")
    assert text.count("\n") == 50_000 and text.startswith("0: 梦见第0个梦。")
    ledger = json.loads((tmp_path / ".zhouyi-written.json").read_text())
    assert ledger["rows.json"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert written_by_zhouyi(target)
    assert not list(tmp_path.glob(".rows.json.*.tmp"))


def test_a_stream_that_fails_midway_leaves_nothing_written(tmp_path):
    target = tmp_path / "rows.json"

    def pieces():
        yield "[\n"
        raise UserError("row 3: stopped")

    with pytest.raises(UserError):
        commit({target: pieces(), tmp_path / "other.json": "{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rows_from_a_reader_stream_meet_the_same_dedup_as_a_list(tmp_path):
    path = tmp_path / "pages.jsonl"
    pages = site_pages(40, seed=9)
    path.write_text("".join(json.dumps({"title": r.title, "text": r.text}, ensure_ascii=False) + "\n"
                            for r in pages + pages[:7]), encoding="utf-8")  # seven pages scraped twice
    result = clean((r for r in read_rows(path) if isinstance(r, Record)), [], CleanOptions.of(eval_ratio=0.0))
    assert result.report["drops"]["exact duplicate text"] == 7
    assert result.report["rows_in"] == 47
