"""Cleaning, round 2: whole saved pages read for their main content (trafilatura), noise trimmed where it sits (a rule
takes its span, never the line around it; a span holding the page's dream and a word of meaning stays and is
counted), structure lines found by their shape, and the audit page (report.html) a person looks at, opened in a real
headless Chromium. The pages here are written in styles bench/sites.py does not use."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import cli
from zhouyi.data.clean import CleanOptions, clean
from zhouyi.data.readers import Record, read_file
from zhouyi.data.rules import Audit, Rule, apply_rules

DREAMS = {  # keyword -> interpretation paragraphs (written for these tests)
    "灯笼": ["梦见红灯笼高挂，预示着家中将有喜事临门，亲友团聚。", "未婚者梦见灯笼，象征着姻缘渐近，宜主动表达心意。"],
    "木桥": ["梦见走过木桥，表示你正处在人生的转折处，需谨慎决断。", "梦见木桥断裂，预示计划受阻，宜暂缓远行。"],
    "柿子": ["梦见满树柿子，意味着事事如意，收获颇丰。", "商人梦见吃柿子，预示生意兴隆，财源广进。"],
    "铜镜": ["梦见擦拭铜镜，表示你渴望看清自己的内心。", "梦见铜镜破碎，预示与亲人之间会有误会，宜多沟通。"],
    "纸鹤": ["梦见折纸鹤，象征着心愿将逐步达成。", "梦见纸鹤飞走，预示你将与旧友重逢。"],
    "砚台": ["梦见砚台，主文运亨通，学业有成。", "学生梦见研墨，预示考试顺利，名列前茅。"],
}
SITE_TEXT = ["梦乡小站", "读者留言", "登录", "本站推荐", "阅读全文", "粤ICP备"]


def wiki_page(keyword: str, n: int) -> str:
    """A page of a wiki-like dream site: <nav> menu, a definition box, comments in a <div id="comments"> with a
    heading, an <aside> of other dreams, the site's name after an en dash in <title>."""
    others = [k for k in DREAMS if k != keyword][:4]
    paras = "".join(f"<p>{p}</p>" for p in DREAMS[keyword])
    return (f'<html><head><meta charset="gb2312"><title>梦见{keyword} – 梦乡小站</title>'
            '<script>var cfg = {"ads": true};</script><style>.x{}</style></head><body>'
            '<nav><ul><li><a href="/">首页</a></li><li><a href="/a">动物</a></li><li><a href="/b">人物</a></li>'
            '<li><a href="/login">登录</a></li></ul></nav>'
            f'<main><h1>梦见{keyword}</h1>{paras}<p><a href="/more">阅读全文</a></p></main>'
            f'<div id="comments"><h4>读者留言</h4><div class="comment"><span class="author">夜行者{n}</span>'
            '<p>写得真好，收藏了。</p></div></div>'
            '<aside><h4>本站推荐</h4><ul>' + "".join(f'<li><a href="/{k}">梦见{k}</a></li>' for k in others)
            + '</ul></aside><footer>梦乡小站 粤ICP备0000号</footer></body></html>')


def saved_site(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, keyword in enumerate(DREAMS):
        (folder / f"p{n}.html").write_bytes(wiki_page(keyword, n).encode("gb18030"))
    return folder


def test_saved_pages_keep_every_interpretation_and_no_site_text(tmp_path):
    read = read_file(saved_site(tmp_path / "site"))
    assert sorted(r.title for r in read.records) == sorted(f"梦见{k}" for k in DREAMS), "the site's name is gone"
    result = clean(read.records, read.skipped, CleanOptions.of(eval_ratio=0.0, template_min_pages=3))
    outputs = {r["instruction"]: r["output"] for r in result.train}
    assert len(outputs) == len(DREAMS)
    text = "\n".join(outputs.values())
    for paragraphs in DREAMS.values():
        for p in paragraphs:
            assert p in text
    assert not [s for s in SITE_TEXT if s in text]


def test_bad_pages_are_counted_with_their_reason_and_never_a_traceback(tmp_path):
    site = saved_site(tmp_path / "site")
    (site / "frames.html").write_text('<html><frameset><frame src="a.html"></frameset></html>')
    (site / "scripts.html").write_text("<html><head><script>var a=1;</script></head></html>")
    (site / "deep.html").write_text("<html><body>" + "<div>" * 10_000 + "梦见" + "</div>" * 10_000 + "</body></html>")
    (site / "huge.html").write_text("<html><body><p>" + "梦" * (9 << 20) + "</p></body></html>")
    wrong = wiki_page("灯笼", 9).replace('charset="gb2312"', 'charset="utf-8"')  # declares UTF-8, is GB18030
    (site / "wrong.html").write_bytes(wrong.encode("gb18030"))
    (site / "loop").symlink_to(site, target_is_directory=True)
    read = read_file(site)
    why = dict(read.skipped)
    assert "no body" in why["frames.html"] and "no body" in why["scripts.html"]
    assert "larger than" in why["huge.html"]
    assert "deep.html" in why, "markup nested 10,000 deep is skipped with its reason"
    wrong_read = next(r for r in read.records if r.source == "wrong.html")
    assert DREAMS["灯笼"][0] in wrong_read.text, "a wrong declaration falls back to detection"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("data", "clean", str(empty), "-o", str(tmp_path / "out.json"), "--no-register", cwd=tmp_path)
    assert result.returncode == 2 and "no *.md or *.html pages" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_rule_takes_its_span_and_never_the_interpretation_around_it():
    """A scraper that joined the page on one line with full-width spaces: the navigation shares the line with the
    interpretation. The whole page survives cleaning, the navigation does not."""
    flat = "　　".join(["解梦屋　首页 > 周公解梦 > 梦见纸鹤", *DREAMS["纸鹤"], "上一篇：梦见铜镜　下一篇：梦见砚台"])
    result = clean([Record("f.json#0", "梦见纸鹤", flat)], [], CleanOptions.of(eval_ratio=0.0))
    (row,) = result.train
    assert row["output"] == "\n".join(DREAMS["纸鹤"])


def test_the_content_guard_keeps_a_span_with_the_dream_and_its_meaning_and_counts_it():
    greedy = Rule("too_greedy", "a user's rule that matches too much", r"^[^\n]*梦见[^\n]*$", "delete")
    audit = Audit()
    text, fired = apply_rules("梦见木桥断裂，预示计划受阻。\n梦见推荐：点击这里", (greedy,), None, "木桥", audit)
    assert text == "梦见木桥断裂，预示计划受阻。", "only the line without meaning goes"
    assert audit.kept == [("too_greedy", "梦见木桥断裂，预示计划受阻。")]
    assert audit.removed == [("too_greedy", "梦见推荐：点击这里")]
    asked, _ = apply_rules("网友：梦见木桥预示着什么？", (greedy,), None, "木桥", Audit())
    assert asked == "", "a question about the dream is not its interpretation"


def test_recurring_short_headings_and_lists_of_other_dreams_are_not_content():
    pages = []
    for n, (keyword, paragraphs) in enumerate(DREAMS.items()):
        others = [f"梦见{k}" for k in DREAMS if k != keyword][:3]
        pages.append(Record(f"s.json#{n}", f"梦见{keyword}", "\n".join(["留言", *paragraphs, "看了又看", *others])))
    result = clean(pages, [], CleanOptions.of(eval_ratio=0.0, template_min_pages=3))
    text = "\n".join(r["output"] for r in result.train)
    assert "留言" not in text and "看了又看" not in text, "short headings recurring as whole lines are templates"
    assert not any(f"梦见{k}\n" in text + "\n" for k in DREAMS), "a run of links to other dreams is a list"
    assert all(p in text for ps in DREAMS.values() for p in ps)


@pytest.mark.slow
@pytest.mark.needs("chromium", "playwright")
def test_report_html_shows_what_report_json_says_in_a_real_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    from playwright.sync_api import sync_playwright

    site = saved_site(tmp_path / "site")
    rules = tmp_path / "rules.yaml"
    rules.write_text("- name: greedy\n  pattern: '^[^\\n]*梦见[^\\n]*$'\n  action: delete\n", encoding="utf-8")
    result = cli("data", "clean", str(site), "-o", str(tmp_path / "out.json"), "--no-register", "--report",
                 str(tmp_path / "report"), "--rules-file", str(rules), "--eval-ratio", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["suspicious_removals"]["kept"] > 0
    page_file = tmp_path / "report" / "report.html"
    assert "http" not in page_file.read_text(encoding="utf-8").split("<body>")[0], "self-contained: no network"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(page_file.as_uri())
        assert page.locator("#suspicious-count").inner_text() == str(report["suspicious_removals"]["kept"])
        shown_rules = {row.locator("td").first.inner_text(): int(row.locator("td").nth(1).inner_text())
                       for row in page.locator("#rules tr").all()[1:]}
        assert shown_rules == report["rule_hits"]
        sections = page.locator("section.page")
        assert sections.count() == len(report["audit"])
        assert "suspicious" in (sections.first.get_attribute("class") or ""), "the suspicious removals come first"
        first = report["audit"][0]
        labels = set(sections.first.locator("mark").evaluate_all("ms => ms.map(m => m.dataset.label)"))
        assert {rule for rule, _ in first["removed"] + first["kept"]} <= labels
        assert sections.first.locator("mark.kept").count() >= 1
        page.screenshot(path=tmp_path / "audit.png", full_page=True)
        browser.close()
    assert (tmp_path / "audit.png").stat().st_size > 1000
    print(f"screenshot: {tmp_path / 'audit.png'}")


def test_the_tutorials_own_page_loses_its_intro_and_advert_and_nothing_is_suspicious():
    """The intro holds the dream and 主观 (no meaning word): the rule written for it takes it whole, and the guard
    does not mistake 主观 or 公主 for an interpretation's 主."""
    page = ("梦见灯笼有现实的影响和反应，也有梦者的主观想象，请看下面由(周公解梦官网)小编帮你整理的"
            "梦见灯笼的详细解说吧。　　" + "　　".join(DREAMS["灯笼"])
            + "　　【大师特色梦境分析】　　以上解梦为通用解释，如需知晓具体事宜：")
    result = clean([Record("t.json#0", "梦见灯笼", page)], [], CleanOptions.of(eval_ratio=0.0))
    assert result.train[0]["output"] == "\n".join(DREAMS["灯笼"])
    assert result.report["suspicious_removals"]["kept"] == 0
    guarded = Rule("mine", "a user's rule", r"^[^\n]*$", "delete")
    for line, kept in (("梦见公主，主观上很开心", False), ("梦见公主，主有财运", True)):
        text, _ = apply_rules(line, (guarded,), None, "公主", Audit())
        assert (text == line) is kept, line
