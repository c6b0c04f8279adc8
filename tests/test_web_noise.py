"""Cleaning any site's scrape: markup parsed, web noise removed by rule classes (zhouyi/data/web_noise.yaml), each
site's boilerplate learnt from its own pages, trailing noise trimmed and never the page dropped for it; on rows
written here."""

import importlib.util
import json

import pytest

from tests.conftest import REPO, cli
from zhouyi.data.clean import CleanOptions, clean
from zhouyi.data.markup import plain
from zhouyi.data.readers import Record
from zhouyi.data.rules import WEB_NOISE, apply_rules

INTERPRETATION = "梦见蛇盘于屋中，主家宅安宁。若蛇入怀，预示将得贵子。"


def test_markup_is_parsed_into_paragraphs_with_entities_decoded_and_invisible_characters_gone():
    html = ("<div class='c'><p>梦见蛇，&nbsp;主财运。</p><p>若蛇入怀&#12288;预示得子。<br/>宜守不宜攻！</p>"
            "<script>var ad = '广告';</script></div>")
    text, done = plain(html)
    assert text == "梦见蛇， 主财运。\n若蛇入怀 预示得子。\n宜守不宜攻！" and "markup parsed" in done
    text, done = plain("梦见\u200b蛇，主\u200d财运。\r\n宜守\u00a0不宜攻！\r\n")
    assert text == "梦见蛇，主财运。\n宜守 不宜攻！\n" and set(done) == {"line ends", "invisible characters",
                                                                         "odd spaces"}
    assert plain("梦见蛇，主财运：吉。（《周公解梦》）")[0] == "梦见蛇，主财运：吉。（《周公解梦》）", \
        "Chinese punctuation untouched, no markup seen in brackets"


NOISE = {  # rule class -> a row this project wrote: an interpretation with that site text around it
    "page_header": "发布时间：2023-05-12 10:20　阅读(3521)　来源：解梦网\n" + INTERPRETATION,
    "breadcrumb": "当前位置：首页 > 周公解梦 > 动物篇\n" + INTERPRETATION,
    "navigation_links": INTERPRETATION + "\n上一篇：梦见龙　下一篇：梦见虎\n猜你喜欢：梦见鱼 梦见猫",
    "copyright": INTERPRETATION + "\n版权所有 © 2023 某解梦网 www.example-jm.com 转载请注明出处",
    "contact_social": INTERPRETATION + "\n关注公众号：meng123，回复梦境免费解析。扫描二维码添加大师。",
    "phone_number": INTERPRETATION + "\n咨询：13812345678 或 0571-88886666",
    "email": INTERPRETATION + "\n投稿请发 jiemeng@example.cn",
    "reader_story": INTERPRETATION + "\n网友分享：我梦见蛇追我，好害怕。\n大师回复：蛇追人主财来，不必惊慌。",
}


@pytest.mark.parametrize("name", NOISE)
def test_each_web_noise_class_removes_its_site_text_and_keeps_the_interpretation(name):
    rule = next(r for r in WEB_NOISE if r.name == name)
    assert rule.description, "every class is documented"
    text, fired = apply_rules(NOISE[name], WEB_NOISE)
    assert name in fired
    assert INTERPRETATION.replace("。", "") in text.replace("\n", "").replace("。", "")
    assert not any(w in text for w in ("发布", "当前位置", "上一篇", "版权", "公众号", "138", "@", "网友")), text


def test_content_that_only_looks_like_noise_stays():
    related = "另外，梦见恋人分手的相关解梦：如果恋人在梦中对你态度冷淡，代表你们正在顺利发展。"
    phone = "梦见打电话给家人，主亲情和睦，远方有信来。"
    for text in (related, phone):
        assert apply_rules(text, WEB_NOISE)[0] == text


DREAMS = [("蛇", "蛇盘于屋中，主家宅安宁，财气渐至。"), ("龙", "龙现于云端，主贵人相助，仕途可期。"),
          ("水", "清水长流，主心境平和，所求皆顺。"), ("火", "火光冲天，主事业兴旺，然须防口舌是非。"),
          ("山", "登山至顶，主志向高远，宜持之以恒。"), ("鱼", "鱼跃龙门，主余财有望，考试得中。"),
          ("桥", "过桥而行，主难关将过，贵人在侧。"), ("雨", "细雨润物，主福泽绵长，忌急躁冒进。"),
          ("花", "百花盛开，主姻缘将至，喜事临门。"), ("马", "骏马奔腾，主行动有成，宜出远门。")]


def site(pages: int) -> list[Record]:
    """A site's pages: its header with the page's keyword, the interpretation, a footer no rule was written for."""
    return [Record(f"site.json#{i}", f"梦见{k}",
                   f"梦见{k}的寓意与象征——某某解梦馆整理\n梦见{k}，{meaning}\n以上内容仅代表某某解梦馆观点，请理性看待"
                   f"第{i + 3}号解读。") for i, (k, meaning) in enumerate(DREAMS[:pages])]


def test_boilerplate_is_learnt_from_the_pages_and_reported():
    result = clean(site(8), [], CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0, min_han=5))
    assert len(result.train) == 8
    assert all("解梦馆" not in r["output"] and "主" in r["output"] for r in result.train), result.train[0]
    patterns = {t["pattern"]: t for t in result.report["templates"]}
    assert patterns["梦见〈K〉的寓意与象征——某某解梦馆整理"]["pages"] == 8
    assert "以上内容仅代表某某解梦馆观点，请理性看待第〈N〉解读。" in patterns
    assert result.report["sentences_removed"]["learnt templates"] == 16
    assert all("主" not in p for p in patterns), "the interpretations differ from page to page: content"
    off = clean(site(8), [], CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0, min_han=5,
                                             learn_templates=False))
    assert all("解梦馆" in r["output"] for r in off.train), "without learning, nothing knew that footer"


def test_a_stock_phrase_is_content_and_a_template_eating_half_a_page_is_kept_as_suspicious():
    footer = "本站所有解梦内容均来自网络整理仅供参考娱乐之用请勿迷信"
    pages = [Record(f"s.json#{i}", f"梦见{k}", f"梦见{k}。主吉。\n{footer}") for i, k in enumerate("蛇龙水火山鱼")]
    result = clean(pages, [], CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0, min_han=1))
    (footer,) = [t for t in result.report["templates"] if "本站" in t["pattern"]]
    assert footer["suspicious_pages"] == 6, "it would take more than half of each page: kept, reported"
    assert not any(t["pattern"] == "主吉。" for t in result.report["templates"]), "two Han characters: content"


def test_templates_saved_from_one_scrape_clean_the_next(project):
    first = project / "first.json"
    first.write_text(json.dumps([{"title": r.title, "text": r.text} for r in site(8)], ensure_ascii=False))
    result = cli("data", "clean", str(first), "-o", "data/first_clean.json", "--save-templates", "templates.json",
                 "--no-register", "--min-han", "5", cwd=project)
    assert result.returncode == 0, result.stderr
    saved = json.loads((project / "templates.json").read_text())
    assert {"梦见〈K〉的寓意与象征——某某解梦馆整理", "以上内容仅代表某某解梦馆观点，请理性看待第〈N〉解读。"} <= \
        {t["pattern"] for t in saved}
    second = project / "second.json"  # two new pages: too few to learn from
    second.write_text(json.dumps([{"title": f"梦见{k}", "text": site(1)[0].text.replace("蛇", k)} for k in "猫狗"],
                                 ensure_ascii=False))
    result = cli("data", "clean", str(second), "-o", "data/second_clean.json", "--templates", "templates.json",
                 "--no-register", "--eval-ratio", "0", "--min-han", "5", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = json.loads((project / "data" / "second_clean.json").read_text())
    assert len(rows) == 2 and all("解梦馆" not in r["output"] for r in rows)
    explained = cli("data", "explain", str(second), "0", "--templates", "templates.json", "--min-han", "5",
                    cwd=project)
    assert "template (known, from templates.json): 梦见〈K〉的寓意与象征——某某解梦馆整理" in explained.stdout


def test_trailing_noise_is_trimmed_never_the_page_dropped():
    page = Record("x.json#0", "梦见蛇", INTERPRETATION + "\n相关推荐\n上一篇：梦见龙\n下一篇：梦见虎\n阅读(12")
    result = clean([page], [], CleanOptions.of(eval_ratio=0.0))
    assert [r["output"] for r in result.train] == [INTERPRETATION]


def test_bad_rules_files_and_pages_are_named(project):
    (project / "rules.yaml").write_text("- name: ok\n  pattern: 'x'\n  action: delete\n- name: bad\n  pattern: '('\n"
                                        "  action: delete\n", encoding="utf-8")
    (project / "pages").mkdir()
    (project / "pages" / "a.html").write_text(f"<html><title>梦见蛇_解梦网</title><p>{INTERPRETATION}</p></html>")
    (project / "pages" / "b.html").write_bytes(b"\xff\xfe\x00\x01binary")
    (project / "pages" / "c.html").write_text("<html><body><div></div></body></html>")
    result = cli("data", "clean", "pages", "-o", "data/out.json", "--rules-file", "rules.yaml", cwd=project)
    assert result.returncode == 2 and "rules.yaml:4: rule bad: the pattern is not a regex" in result.stderr
    assert not (project / "data" / "out.json").exists()
    (project / "rules.yaml").write_text("- name: [unclosed\n", encoding="utf-8")
    result = cli("data", "clean", "pages", "-o", "data/out.json", "--rules-file", "rules.yaml", cwd=project)
    assert result.returncode == 2 and "rules.yaml is not YAML (line 2" in result.stderr
    result = cli("data", "clean", "pages", "-o", "data/out.json", "--eval-ratio", "0", "--report", "rep",
                 cwd=project)
    assert result.returncode == 0, result.stderr
    report = json.loads((project / "rep" / "report.json").read_text())
    assert report["rows_out"] == 1 and report["drops"]["unreadable row"] == 2
    assert {s["source"] for s in report["skipped_rows"]} == {"b.html", "c.html"}
    assert json.loads((project / "data" / "out.json").read_text())[0]["output"] == INTERPRETATION


def test_three_sites_zhouyi_was_never_shown_keep_their_interpretations_and_lose_their_site_text():
    spec = importlib.util.spec_from_file_location("sites", REPO / "bench" / "sites.py")
    sites = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sites)
    dreams = [(k, f"梦见{k}，{meaning}若梦中{k}不动，则{meaning[:6]}之兆稍缓。") for k, meaning in DREAMS]
    for style in sites.SITES:
        pages = sites.site_pages(style, dreams)
        result = clean([Record(f"{style}.json#{i}", p["title"], p["text"]) for i, p in enumerate(pages)], [],
                       CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0))
        from zhouyi.data.clean import question

        by_question = {r["instruction"]: r["output"] for r in result.train}
        outputs = {p["title"]: by_question[question(p["title"], 42)] for p in pages
                   if question(p["title"], 42) in by_question}
        found = sites.score(pages, outputs)
        assert found["kept_share"] >= 0.95 and found["pages_with_noise"] == 0, (style, found)
