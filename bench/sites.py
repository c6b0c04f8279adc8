"""Pages in the style of three dream sites that are not the tutorial's, written by this project around interpretation
texts it is given: each page records the interpretation sentences it carries and the site text it added, so a
cleaning can be scored (sentences kept, pages with site text left). Used by bench/bench_sites.py and the tests.

- portal: HTML with a breadcrumb, a header of publish date, views and source, entities (&nbsp; &gt; &#12288;),
  an attribution with the page's address, previous/next links and a related list;
- forum: CRLF text with zero-width characters, a title line with the site's name, a header with view count and
  date, a reader's story with the site's reply, an official-account advert and a WeChat contact;
- mobile: plain text whose boilerplate no rule was written for: a byline under the title, a disclaimer sentence
  and a call to action with the keyword, a phone number and an e-mail address, a tag line.

And three written after the round-2 cleaning issue, in styles the rules were not written for (SAVED_PAGES are whole
saved HTML documents, read from a folder of *.html files; the others are text rows):

- blog: a whole page saved by a crawler: <head> with the site's name in <title>, styles and scripts, a top menu of
  links, a sidebar with a short heading over a list of other dreams, an advert block inside the article, a readers'
  comment section with its heading, posters' names and their comments, a footer;
- almanac: an old table-layout site saved with `wget`: GBK-declared page, breadcrumbs in a table cell, the article in
  a <td> with <br> line breaks, a `script` between paragraphs, a "猜你喜欢" grid of short links, a share bar, guest
  comments ("游客 … 说：") and a comment form;
- flat: text rows whose scraper joined the whole page on one line with full-width spaces: a site header, the
  breadcrumb and the publish line share the line with the interpretation, and the related links and previous/next
  follow it on the same line.
"""

from __future__ import annotations

import random
import re

SITES = ("portal", "forum", "mobile", "blog", "almanac", "flat")
SAVED_PAGES = ("blog", "almanac")  # whole HTML documents: written as one .html file each and read as a folder


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
    if style == "blog":
        return _blog(keyword, paragraphs, n, rng, (k2, k3, k4), text)
    if style == "almanac":
        return _almanac(keyword, paragraphs, n, rng, (k2, k3, k4), text)
    if style == "flat":
        noise = ["梦境百科网", "网站首页", f"发布：2021-0{1 + n % 9}-{day:02d}", "相关梦境", "上一篇", "下一篇"]
        flat = "　　".join([f"梦境百科网　首页 > 解梦大全 > 梦见{keyword}",
                           f"发布：2021-0{1 + n % 9}-{day:02d}　阅读 {views}",
                           *paragraphs, f"相关梦境：梦见{k2}　梦见{k3}　梦见{k4}",
                           f"上一篇：梦见{k2}　下一篇：梦见{k3}　网站首页"])
        return {"title": f"梦见{keyword}", "text": flat, "noise": noise, "keep": sentences(text)}
    noise = ["周易解梦馆整理", "仅代表周易解梦馆观点", "请点击下方按钮", f"0571-8888{n % 10000:04d}", "service@jmg.cn",
             "热门标签"]
    plain = (f"梦见{keyword}的寓意与象征——周易解梦馆整理\n" + "\n".join(paragraphs) +
             "\n以上内容仅代表周易解梦馆观点，梦境因人而异，请理性看待。"
             f"想了解更多梦见{keyword}的解释，请点击下方按钮获取专属解读。\n"
             f"联系电话：0571-8888{n % 10000:04d}　邮箱：service@jmg.cn\n热门标签：动物 植物 人物")
    return {"title": f"梦见{keyword}", "text": plain, "noise": noise, "keep": sentences(text)}


def _blog(keyword: str, paragraphs: list[str], n: int, rng: random.Random, others: tuple, text: str) -> dict:
    k2, k3, k4 = others
    user, user2 = f"梦友{rng.randint(1000, 9999)}", f"小鱼{rng.randint(10, 99)}"
    noise = ["解梦吧", "网友评论", user, "好准啊", "热门梦境", "限时免费测算", "京ICP备", "登录后发表"]
    middle = max(1, len(paragraphs) // 2)
    article = "".join(f"<p>{p}</p>\n" for p in paragraphs[:middle])
    article += ('<div class="ad-inline"><a href="/cs/">限时免费测算：输入生日，看你的2024运势</a></div>\n'
                '<script>window.adsbygoogle=window.adsbygoogle||[];adsbygoogle.push({});</script>\n')
    article += "".join(f"<p>{p}</p>\n" for p in paragraphs[middle:])
    html = (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">\n<title>梦见{keyword}_解梦吧</title>\n'
            '<meta name="description" content="解梦吧为您提供专业解梦">\n'
            '<style>body{font:14px/1.6 sans-serif}.side h3{color:#c00}</style>\n'
            '<script>var _hmt=_hmt||[];(function(){var hm=document.createElement("script");})();</script>\n'
            '</head><body>\n<div class="top"><a href="/">首页</a> <a href="/dm/">解梦大全</a> <a href="/xz/">星座</a> '
            '<a href="/cs/">测算</a></div>\n<div class="wrap"><div class="main">\n<article>\n'
            f'<h1>梦见{keyword}</h1>\n{article}</article>\n<section class="comments">\n<h3>网友评论</h3>\n'
            f'<div class="c"><b>{user}</b><span>3天前</span><p>好准啊，我也梦见过{keyword}！</p></div>\n'
            f'<div class="c"><b>{user2}</b><span>1周前</span><p>昨晚刚梦到，来看看。</p></div>\n'
            '<div class="login">登录后发表评论</div>\n</section></div>\n'
            f'<aside class="side"><h3>热门梦境</h3><ul><li><a href="/1">梦见{k2}</a></li><li><a href="/2">梦见{k3}</a>'
            f'</li><li><a href="/3">梦见{k4}</a></li></ul></aside></div>\n'
            '<footer>© 2024 解梦吧 京ICP备12345678号</footer>\n</body></html>\n')
    return {"title": f"梦见{keyword}", "text": html, "noise": noise, "keep": sentences(text)}


def _almanac(keyword: str, paragraphs: list[str], n: int, rng: random.Random, others: tuple, text: str) -> dict:
    k2, k3, k4 = others
    noise = ["老黄历解梦", "您现在的位置", "猜你喜欢", "分享到", "游客", "发表评论", "验证码"]
    body = "<br>\n".join(f"&nbsp;&nbsp;&nbsp;&nbsp;{p}" for p in paragraphs[:1])
    body += '<br>\n<script type="text/javascript">show_ad("c2");</script>\n'
    body += "<br>\n".join(f"&nbsp;&nbsp;&nbsp;&nbsp;{p}" for p in paragraphs[1:])
    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk">\n'
            f'<title>梦见{keyword}是什么意思 - 老黄历解梦</title></head>\n<body bgcolor="#ffffff">\n'
            '<table width="960"><tr><td class="pos">您现在的位置：<a href="/">老黄历解梦</a> &raquo; <a href="/z/">'
            f'周公解梦</a> &raquo; 梦见{keyword}</td></tr>\n<tr><td class="art">\n<h2>梦见{keyword}</h2>\n{body}\n'
            '</td></tr>\n<tr><td class="share">分享到：<a>微博</a> <a>QQ空间</a> <a>豆瓣</a></td></tr>\n'
            f'<tr><td class="like"><b>猜你喜欢</b><br><a>梦见{k2}</a> | <a>梦见{k3}</a> | <a>梦见{k4}</a></td></tr>\n'
            f'<tr><td class="cmt">游客 2019-0{1 + n % 9}-12 说：说得挺有道理的。<br>\n'
            '<form>发表评论 <textarea></textarea> 验证码：<input> <input type="submit" value="提交"></form>'
            '</td></tr>\n</table></body></html>\n')
    return {"title": f"梦见{keyword}", "text": html, "noise": noise, "keep": sentences(text)}


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
