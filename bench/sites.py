"""Pages in the style of three dream sites that are not the tutorial's, written by this project around interpretation
texts it is given: each page records the interpretation sentences it carries and the site text it added, so a
cleaning can be scored (sentences kept, pages with site text left). Used by bench/bench_sites.py and the tests.

- portal: HTML with a breadcrumb, a header of publish date, views and source, entities (&nbsp; &gt; &#12288;),
  an attribution with the page's address, previous/next links and a related list;
- forum: CRLF text with zero-width characters, a title line with the site's name, a header with view count and
  date, a reader's story with the site's reply, an official-account advert and a WeChat contact;
- mobile: plain text whose boilerplate no rule was written for: a byline under the title, a disclaimer sentence
  and a call to action with the keyword, a phone number and an e-mail address, a tag line.
"""

from __future__ import annotations

import random
import re

SITES = ("portal", "forum", "mobile")


def sentences(text: str) -> list[str]:
    """The interpretation's sentences that a cleaning must keep (4 Han characters or more)."""
    found = re.findall(r"[^。！？\n]*[。！？]", text)
    return [s.strip() for s in found if len(re.findall(r"[\u4e00-\u9fff]", s)) >= 4]


def page(style: str, keyword: str, text: str, n: int, rng: random.Random, others: list[str]) -> dict:
    """One page: {"title", "text", "noise": [site text it added], "keep": [sentences to keep]}."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    views, day = rng.randint(100, 99999), rng.randint(1, 28)
    k2, k3, k4 = (rng.choice(others) for _ in range(3))
    if style == "portal":
        noise = ["当前位置", f"发布时间：2023-05-{day:02d}", f"阅读：{views}", f"jiemeng-a.com/{n}.html", "上一篇",
                 "相关解梦"]
        body = "".join(f"<p>&nbsp;&nbsp;{p}</p>" for p in paragraphs)
        html = (f'<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/jm/">周公解梦</a> &gt; '
                f'<a href="/jm/{n % 7}/">分类</a></div>\n<h1>梦见{keyword}是什么意思</h1>\n'
                f'<div class="info">发布时间：2023-05-{day:02d} 10:{n % 60:02d}&#12288;阅读：{views}次&#12288;'
                f'来源：解梦网</div>\n<div class="content">{body}</div>\n'
                f"<p>本文由解梦网整理，转载请注明出处：https://www.jiemeng-a.com/{n}.html</p>\n"
                f'<div class="nav">上一篇：<a>梦见{k2}</a>&#12288;下一篇：<a>梦见{k3}</a></div>\n'
                f'<div class="related">相关解梦：<a>梦见{k4}</a> <a>梦见{k2}</a></div>')
        return {"title": f"梦见{keyword}", "text": html, "noise": noise, "keep": sentences(text)}
    if style == "forum":
        noise = ["星座解梦网", f"浏览次数：{views}", "网友分享", "解梦师回复", "每日解梦", f"jm{views}"]
        zw = "\u200b"
        body = "\r\n".join(zw.join(p[i:i + 12] for i in range(0, len(p), 12)) for p in paragraphs)
        plain = (f"{keyword}梦境解析 | 星座解梦网\r\n浏览次数：{views}　更新日期：2022年3月{day}日\r\n{body}\r\n"
                 f"网友分享：我昨晚梦见{keyword}，醒来心里很不安，请问是什么预兆？\r\n"
                 f"解梦师回复：这位朋友不必担心，梦境多是日有所思，放宽心即可。\r\n"
                 f"关注公众号“每日解梦”，回复关键词即可免费解梦。\r\n客服微信：jm{views}")
        return {"title": keyword, "text": plain, "noise": noise, "keep": sentences(text)}
    noise = ["周易解梦馆整理", "仅代表周易解梦馆观点", "请点击下方按钮", f"0571-8888{n % 10000:04d}", "service@jmg.cn",
             "热门标签"]
    plain = (f"梦见{keyword}的寓意与象征——周易解梦馆整理\n" + "\n".join(paragraphs) +
             "\n以上内容仅代表周易解梦馆观点，梦境因人而异，请理性看待。"
             f"想了解更多梦见{keyword}的解释，请点击下方按钮获取专属解读。\n"
             f"联系电话：0571-8888{n % 10000:04d}　邮箱：service@jmg.cn\n热门标签：动物 植物 人物")
    return {"title": f"梦见{keyword}", "text": plain, "noise": noise, "keep": sentences(text)}


def site_pages(style: str, interpretations: list[tuple[str, str]], seed: int = 0) -> list[dict]:
    """A site's pages around (keyword, interpretation) pairs."""
    rng = random.Random(f"{style}-{seed}")
    keywords = [k for k, _ in interpretations]
    return [page(style, k, text, n, rng, keywords) for n, (k, text) in enumerate(interpretations)]


def score(pages: list[dict], outputs: dict[str, str]) -> dict:
    """Sentences kept (their text in the page's cleaned output) and pages with any of their site text left;
    `outputs`: title -> cleaned text (a dropped page is absent)."""
    kept = total = noisy = dropped = 0
    for p in pages:
        out = outputs.get(p["title"])
        total += len(p["keep"])
        if out is None:
            dropped += 1
            continue
        flat = out.replace("\n", "")
        kept += sum(s in flat for s in p["keep"])
        noisy += any(n in out for n in p["noise"])
    return {"pages": len(pages), "dropped": dropped, "sentences": total, "kept": kept,
            "kept_share": round(kept / total, 4) if total else 1.0, "pages_with_noise": noisy}
