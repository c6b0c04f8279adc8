"""The data pipeline on fixtures written here, and the quality bar on the shared scraped data."""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, cli, write_json
from zhouyi.data.clean import PERSONA, CleanOptions, asked_dream, clean, han_count, keyword, question
from zhouyi.data.identity import QUESTIONS as IDENTITY_QUESTIONS
from zhouyi.data.readers import Record, read_file
from zhouyi.data.rules import DEFAULT_RULES, apply_rules, case_study_rules
from zhouyi.evaluation.answers import in_voice
from zhouyi.spec import OFF_VOICE_MARKERS, VOICE_MARKERS

BODY = "梦见蛇缠身，预示近日有意外之财。若被蛇咬，宜防小人暗算，言行须谨慎。"
INTRO = ("梦见蛇有现实的影响和反应，也有梦者的主观想象，请看下面由(周公解梦官网)小编帮你整理的梦见蛇的详细解说吧。")
FOOTER = "【大师特色梦境分析】　　以上解梦为通用解释，如需知晓具体事宜，可请大师结合您的生辰八字及做梦时的情景解梦："


def cleaned(text: str) -> str:
    out, _ = apply_rules(text, DEFAULT_RULES)
    return out


def test_site_intro_and_advert_footer_vanish_and_the_interpretation_stays():
    out = cleaned(f"{INTRO}\n　　{BODY}\n\n\n{FOOTER}八字测算 http://example.com")
    assert out == BODY


def test_noise_rules_each_remove_their_noise():
    assert cleaned(f"{BODY}（来自周公解梦官网）") == BODY
    assert cleaned(f"<p>{BODY}</p>&nbsp;") == BODY
    assert cleaned(f"梦见梦见{BODY[2:]}") == BODY
    assert cleaned("梦见大水,主财源广进?水清者吉") == "梦见大水，主财源广进？水清者吉"
    assert cleaned("梦见大水， 主财源广进。 水清者吉。") == "梦见大水，主财源广进。水清者吉。"
    assert cleaned(f"{BODY}\n\n梦见蛇的吉凶：一时盛运，而可成功发展之吉兆。\n\n【中吉】") == BODY
    classical = cleaned(f"{BODY}\n原版周公解梦：梦蛇入怀，生贵子。\n《周公解梦》")
    assert classical == f"{BODY}\n梦蛇入怀，生贵子。《周公解梦》"
    assert cleaned("梦境描述：我梦见一条蛇。梦境解析：压力大。") == ""
    keep = case_study_rules(DEFAULT_RULES, "keep_analysis")
    assert apply_rules(f"{BODY}梦境描述：我梦见一条蛇。梦境解析：压力大。", keep)[0] == f"{BODY}压力大。"


def test_mojibake_rows_are_dropped():
    out, fired = apply_rules("丈夫梦见离婚，æ¢¦è§ç¦»å©š", DEFAULT_RULES)
    assert out is None and fired == ["mojibake"]


def test_questions_are_deterministic_and_use_the_keyword():
    assert keyword("蛇上身什么意思") == "蛇上身" and keyword("梦见大水") == "大水"
    assert question("蛇上身什么意思", 1) == question("蛇上身什么意思", 1)
    assert "蛇上身" in question("蛇上身什么意思", 1)


def test_near_duplicates_collapse_per_dream_and_share_a_split():
    template = ("带有神秘的意味。预示近期你可能会遇到连自己也解释不清楚的偶然事件，"
                "或是突然有惊人的直觉，判断力异常准确。")
    records = [Record("a#0", "梦见作曲家", "梦见作曲家，" + template),
               Record("a#1", "梦见雕塑家", "梦见雕塑家，" + template),  # another dream, same answer: kept
               Record("a#2", "作曲家是什么意思", "梦见作曲家，" + template.replace("惊人的", "")),  # same dream
               Record("a#3", "蛇", BODY)]
    for ratio in (0.3, 0.5, 0.7):  # whatever the split, the near-duplicate cluster never straddles it
        result = clean(records, [], CleanOptions.of(eval_ratio=ratio, seed=7))
        assert result.report["drops"]["near duplicate"] == 1 and result.report["near_duplicate_clusters"] == 1
        outputs = {row["output"][:5]: split for split in ("train", "eval") for row in getattr(result, split)}
        assert outputs["梦见作曲家"] == outputs["梦见雕塑家"] and len(outputs) == 3
    exact_only = clean(records, [], CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0))
    assert len(exact_only.train) == 4 and "near duplicate" not in exact_only.report["drops"]


def test_near_duplicate_clusters_equal_brute_force_jaccard():
    import random

    from zhouyi.data.neardup import clusters, shingles

    rng = random.Random(3)
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    bases = ["".join(rng.choice(han) for _ in range(80)) for _ in range(40)]
    texts = []
    for base in bases:  # each base with copies that change 0 to 12 characters
        for _ in range(4):
            chars = list(base)
            for _ in range(rng.randrange(13)):
                chars[rng.randrange(len(chars))] = rng.choice(han)
            texts.append("".join(chars))
    sets = [shingles(t) for t in texts]
    found = clusters(texts, 0.8)
    for i in range(len(texts)):
        for j in range(i):
            similar = len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.8
            assert not similar or found[i] == found[j], f"missed a near-duplicate pair ({i}, {j})"
    assert 40 <= len(set(found)) < len(texts)


def test_duplicates_merge_filters_apply_and_persona_goes_to_system():
    records = [Record("a#0", "蛇", BODY), Record("a#1", "梦见一条蛇", BODY + " "), Record("a#2", "短", "梦见蛇。"),
               Record("a#3", "断", "梦见断崖，然后，")]
    result = clean(records, [], CleanOptions.of(eval_ratio=0.0))
    (row,) = result.train
    assert row["output"] == BODY and row["system"].startswith("你是周文王") and "蛇" in row["instruction"]
    assert result.report["drops"]["exact duplicate text"] == 1
    assert result.report["drops"]["cut mid-sentence, no sentence complete"] == 1
    tutorial = clean(records, [], CleanOptions.of(eval_ratio=0.0, persona_as="instruction")).train[0]
    assert tutorial["instruction"].startswith("你是周文王") and "system" not in tutorial


def test_a_page_cut_mid_sentence_keeps_its_complete_sentences():
    cut = "梦见大水冲进家门，预示财源滚滚而来。若水清澈，主家宅平安，诸事顺遂。若水浑浊则须防，"
    result = clean([Record("a#0", "大水", cut), Record("a#1", "蛇", BODY)], [], CleanOptions.of(eval_ratio=0.0))
    outputs = {r["output"] for r in result.train}
    assert outputs == {"梦见大水冲进家门，预示财源滚滚而来。若水清澈，主家宅平安，诸事顺遂。", BODY}
    assert result.report["finished_rows"]["unfinished tail trimmed"] == 1 and not result.report["drops"]
    short = clean([Record("a#0", "大水", "梦见大水。若水浑浊则须防小人暗中作梗，以免")], [],
                  CleanOptions.of(eval_ratio=0.0))
    assert short.report["drops"] == {"shorter than 20 Han characters": 1}, "what remains must still pass the filters"
    stop = clean([Record("a#0", "鹦鹉", "梦见鹦鹉落在树上，意味着没有能力解决眼前的问题，因为忧愁焦虑而病倒")], [],
                 CleanOptions.of(eval_ratio=0.0))
    assert stop.train[0]["output"].endswith("而病倒。"), "a sentence that only lacks its full stop gets one"
    assert stop.report["finished_rows"] == {"unfinished tail trimmed": 0, "full stop added": 1}


def test_answer_paragraphs_keeps_the_answer_to_the_question_asked():
    page = ("梦见和尚的不同情况也有不同的意思：\n梦见和尚念经，预示近日心境平和，诸事顺遂。\n"
            "梦见和尚化缘，主破财，宜节俭。\n病人梦见和尚，病将痊愈。")
    listed = Record("a#0", "和尚", page)
    short = Record("a#1", "寿司", "梦见寿司，收入将增多。\n梦见吃寿司，表示收入增多，也许会有意外的收入，宜储蓄。")
    whole = clean([listed, short], [], CleanOptions.of(eval_ratio=0.0))
    first = clean([listed, short], [], CleanOptions.of(eval_ratio=0.0, answer_paragraphs=1))
    answers = {r["instruction"]: r["output"] for r in first.train}
    assert len(first.train) == len(whole.train) == 2, "the length filters judge the whole page, not the cut"
    heading_and_answer = "梦见和尚的不同情况也有不同的意思：\n梦见和尚念经，预示近日心境平和，诸事顺遂。"
    assert answers[question("和尚", 42)] == heading_and_answer, \
        "a heading is not an answer on its own: the cut runs on to the first finished sentence"
    assert answers[question("寿司", 42)] == "梦见寿司，收入将增多。"
    assert first.report["finished_rows"]["cut to answer_paragraphs"] == 2
    three = clean([listed], [], CleanOptions.of(eval_ratio=0.0, answer_paragraphs=3)).train[0]["output"]
    assert three.count("\n") == 2 and three.endswith("宜节俭。")
    assert clean([listed], [], CleanOptions.of(eval_ratio=0.0, answer_paragraphs=9)).report["finished_rows"] == \
        {"unfinished tail trimmed": 0, "full stop added": 0}, "nothing to cut: not counted as cut"


def test_identity_rows_answer_who_are_you_in_the_persona_s_voice_and_only_in_train(tmp_path: Path):
    dreams = [Record(
        f"a#{i}", f"物{i}", f"梦见{'山水风火雷泽天地金木'[i]}，{BODY[4:]}{'甲乙丙丁戊己庚辛壬癸'[i] * 9}。")
              for i in range(10)]
    plain = clean(dreams, [], CleanOptions.of(eval_ratio=0.2))
    mixed = clean(dreams, [], CleanOptions.of(eval_ratio=0.2, identity_ratio=0.2, persona_name="周文王",
                                              persona_description="精通《周易》"))
    identity = [r for r in mixed.train if r not in plain.train]
    assert mixed.eval == plain.eval, "the eval split stays dreams only"
    assert len(identity) == mixed.report["identity_rows"] == 2, "two rows make 20% of ten"
    assert len(mixed.train) == len(plain.train) + 2
    for row in identity:
        assert row["instruction"] in IDENTITY_QUESTIONS and row["system"] == PERSONA
        assert "周文王" in row["output"] and "精通《周易》。" in row["output"]
        assert in_voice(row["output"], list(VOICE_MARKERS), list(OFF_VOICE_MARKERS)), row["output"]
    again = clean(dreams, [], CleanOptions.of(eval_ratio=0.2, identity_ratio=0.2, persona_name="周文王",
                                              persona_description="精通《周易》"))
    assert again.train == mixed.train, "seeded: the same rows in the same places"
    as_tutorial = clean(dreams, [], CleanOptions.of(eval_ratio=0.0, identity_ratio=0.5, persona_name="周文王",
                                                    persona_as="instruction"))
    rows = [r for r in as_tutorial.train if r["input"] in IDENTITY_QUESTIONS]
    assert len(rows) == 10 and all(r["instruction"] == PERSONA for r in rows), "shaped like the cleaned rows"

    src = write_json(tmp_path / "in.json", [{"title": d.title, "text": d.text} for d in dreams])
    r = cli("data", "clean", str(src), "-o", str(tmp_path / "out.json"), "--identity-ratio", "0.1", cwd=tmp_path)
    assert r.returncode == 2 and "persona_name" in r.stderr and "--persona-name" in r.stderr
    assert not (tmp_path / "out.json").exists(), "nothing written"
    r = cli("data", "clean", str(src), "-o", str(tmp_path / "out.json"), "--identity-ratio", "0.1",
            "--persona-name", "周文王", "--no-register", cwd=tmp_path)
    assert r.returncode == 0 and "identity rows" in r.stdout


def test_a_split_never_empties_train_or_an_eval_that_was_asked_for():
    one_template = [Record(f"a#{i}", f"物{i}", f"梦见物{i}，预示你近期运势平稳，宜守不宜攻，凡事三思而后行。")
                    for i in range(20)]
    for seed in range(30):  # whichever way the seeded draw falls
        result = clean(one_template, [], CleanOptions.of(eval_ratio=0.5, seed=seed))
        assert len(result.train) == 20 and not result.eval, "one cluster: all of it trains, none can be held out"
        assert "one cluster" in result.report["split_note"]
    distinct = [Record(f"b#{i}", f"梦{i}", f"梦见{'山水风火雷泽天地'[i]}，{BODY[4:]}{'甲乙丙丁戊己庚辛壬'[i] * 9}。")
                for i in range(3)]
    for seed in range(30):
        for ratio in (0.01, 0.99):
            result = clean(distinct, [], CleanOptions.of(eval_ratio=ratio, seed=seed, near_dup_threshold=0.0))
            assert result.train and result.eval, (seed, ratio)


def test_cli_writes_registers_and_refuses_bad_input(tmp_path: Path):
    rows = [{"title": f"蛇{i}", "text": BODY.replace("蛇", f"蛇{i}")} for i in range(40)]
    src = write_json(tmp_path / "pages.json", rows)
    result = cli("data", "clean", str(src), "-o", "data/zhougong.json", "--report", "rep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train = json.loads((tmp_path / "data" / "zhougong.json").read_text())
    evals = json.loads((tmp_path / "data" / "zhougong_eval.json").read_text()) if (
        tmp_path / "data" / "zhougong_eval.json").exists() else []
    assert len(train) + len(evals) == 40
    registry = json.loads((tmp_path / "data" / "dataset_info.json").read_text())
    assert registry["zhougong"]["columns"]["system"] == "system"
    assert "# Data cleaning report" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty.json").write_text("")
    tiny = write_json(tmp_path / "tiny.json", [{"title": "蛇", "text": "梦见蛇。"}])
    for args, expected in [((str(tmp_path / "empty.json"),), "empty"), ((str(tiny),), "every row was filtered out"),
                           (("data/zhougong.json",), "is one of the inputs")]:
        bad = cli("data", "clean", *args, "-o", "data/zhougong.json", cwd=tmp_path)
        assert bad.returncode == 2 and expected in bad.stderr, bad.stderr
    assert json.loads((tmp_path / "data" / "zhougong.json").read_text()) == train, "nothing overwritten on error"


SPEC_WITH_CLEAN = """
name: mine
model: {model_name_or_path: m, template: qwen, default_system: 你是周公。}
data:
  dataset_dir: mydata
  datasets: [{name: dreams, file_name: dreams.json}]
  clean:
    output: dreams.json
    report: rep
    eval_ratio: 0.0
    disable_rules: [doubled_mengjian]
    rules: [{name: my-site, pattern: '本文来自\\S+?。', action: delete}]
"""


def test_spec_drives_the_cleaning_rules_and_output(tmp_path: Path):
    from zhouyi.data.rules import DEFAULT_RULES

    assert "doubled_mengjian" in [r.name for r in DEFAULT_RULES]
    (tmp_path / "mine.yaml").write_text(SPEC_WITH_CLEAN, encoding="utf-8")
    rows = [{"title": "蛇", "text": "梦见梦见" + BODY[2:] + "本文来自某某网。"}]
    src = write_json(tmp_path / "pages.json", rows)
    result = cli("data", "clean", "--spec", "mine.yaml", str(src), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((tmp_path / "mydata" / "dreams.json").read_text())
    assert row["output"] == "梦见梦见" + BODY[2:], "the spec's rule ran; the disabled one did not"
    assert row["system"] == "你是周公。", "the persona is the spec's default_system"
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["rule_hits"]["my-site"] == 1 and "doubled_mengjian" not in report["rule_hits"]


def test_bad_clean_settings_name_the_field(tmp_path: Path):
    bad = SPEC_WITH_CLEAN.replace("[doubled_mengjian]", "[doubled_mengjan]").replace("S+?。", "S+?(。")
    (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
    result = cli("data", "clean", "--spec", "bad.yaml", "x.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "data.clean.disable_rules" in result.stderr and "did you mean 'doubled_mengjian'?" in result.stderr
    assert "data.clean.rules.0.pattern" in result.stderr and "not a valid regex" in result.stderr


def test_traditional_text_is_converted_to_simplified_before_the_rules():
    records = [Record("t#0", "夢見蛇", "夢見蛇纏身，預示近日有意外之財。若被蛇咬，宜防小人暗算，言行須謹慎。")]
    result = clean(records, [], CleanOptions.of(eval_ratio=0.0, t2s=True))
    assert result.train[0]["output"] == BODY and "蛇" in result.train[0]["instruction"]
    assert result.report["rule_hits"]["traditional to simplified"] == 1
    assert clean(records, [], CleanOptions.of(eval_ratio=0.0)).train[0]["output"] != BODY, "off by default"


def test_explain_traces_one_row_rule_by_rule(tmp_path: Path):
    src = write_json(tmp_path / "pages.json", [{"title": "蛇", "text": f"{INTRO}\n{BODY}\n{FOOTER}"},
                                               {"title": "短", "text": "梦见蛇。"}])
    kept = cli("data", "explain", str(src), "0", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "rule site_intro" in kept.stdout and "rule advert_footer" in kept.stdout
    assert f"  {BODY}" in kept.stdout and "verdict: kept" in kept.stdout
    dropped = cli("data", "explain", str(src), "1", cwd=tmp_path)
    assert "verdict: dropped (shorter than 20 Han characters)" in dropped.stdout
    missing = cli("data", "explain", str(src), "2", cwd=tmp_path)
    assert missing.returncode == 2 and "has 2 readable records (0..1)" in missing.stderr


def test_csv_tsv_and_markdown_folders_read_like_json(tmp_path: Path):
    (tmp_path / "pages.csv").write_text(f"title,detail\n蛇,{BODY}\n龙,\n", encoding="utf-8")
    (tmp_path / "pages.tsv").write_text(f"instruction\tinput\toutput\n梦见蛇\t\t{BODY}\n", encoding="gb18030")
    pages = tmp_path / "site" / "人物"
    pages.mkdir(parents=True)
    (pages / "a.md").write_text(f"---\ntitle: 一群人\ncategory: 人物\n---\n{BODY}\n", encoding="utf-8")
    (pages / "无题.md").write_text(BODY, encoding="utf-8")
    (pages / "empty.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    csv_read = read_file(tmp_path / "pages.csv")
    assert [(r.title, r.text) for r in csv_read.records] == [("蛇", BODY)] and len(csv_read.skipped) == 1
    (alpaca,) = read_file(tmp_path / "pages.tsv").records
    assert alpaca.question == "梦见蛇" and alpaca.text == BODY
    md = read_file(tmp_path / "site")
    assert sorted(r.title for r in md.records) == ["一群人", "无题"] and md.skipped == [("人物/empty.md", "empty page")]
    assert all(r.text.strip() == BODY for r in md.records)
    (tmp_path / "own.json").write_text(json.dumps([{"梦": "蛇", "解": BODY}], ensure_ascii=False), encoding="utf-8")
    assert read_file(tmp_path / "own.json").records == []
    (own,) = read_file(tmp_path / "own.json", title_fields=("梦",), text_fields=("解",)).records
    assert (own.title, own.text) == ("蛇", BODY)


def test_undecodable_and_binary_files_name_the_problem(tmp_path: Path):
    (tmp_path / "bin.json").write_bytes(b"\x00\x01\x02")
    with pytest.raises(Exception, match="binary"):
        read_file(tmp_path / "bin.json")
    (tmp_path / "bad.json").write_bytes(b'[{"title": "\xff\xfe\xff"}]')
    with pytest.raises(Exception, match="offset"):
        read_file(tmp_path / "bad.json")


FILES = {"jingle1267_zgjm.jsonl": 10638, "leochan2017_zgjm.json": 1789, "maxsherry_jiemeng_classical.txt": 27}


@pytest.mark.needs("shared")
def test_shared_quality_bar():
    records, skipped = [], []
    for name, expected in FILES.items():
        read = read_file(SHARED_DATA / name)
        assert len(read.records) == expected, name
        records += read.records
        skipped += read.skipped
    opts = CleanOptions()
    result = clean(records, skipped, opts)
    rows = result.train + result.eval
    deleting = [r for r in DEFAULT_RULES if r.action in ("delete", "truncate_from", "drop_row")]
    for rule in deleting:
        hits = [row["output"] for row in rows if rule.compiled().search(row["output"])]
        assert not hits, f"{rule.name} still matches: {hits[:1]}"
    assert min(han_count(r["output"]) for r in rows) >= opts.settings.min_han
    outputs = [re.sub(r"[^\w]", "", r["output"]) for r in rows]
    assert len(outputs) == len(set(outputs)), "no exact duplicate outputs"
    assert 0 < len(result.eval) < len(result.train)
    # the counts docs/data.md states (a change to the rules that moves them must say why there)
    assert (result.report["rows_in"], len(result.train), len(result.eval)) == (12_455, 8_079, 400)
    # the noise the data's README lists, looked for by its own words rather than the rules' patterns
    text = "\n".join(r["output"] for r in rows)
    for marker in ("周公解梦官网", "小编", "http", "www.", "【", "】", "以上解梦", "详细解说", "人、地两格", "凶数",
                   "今天会", "原版周公解梦：", "梦见梦见", "&nbsp;", "<p>", "\u3000"):
        assert marker not in text, marker
    # rows where no rule fired lose no Han text
    for rec in records[:3000]:
        out, fired = apply_rules(rec.text, DEFAULT_RULES)
        if not fired:
            assert re.findall(r"[\u4e00-\u9fff]", out) == re.findall(r"[\u4e00-\u9fff]", rec.text)


def test_a_scrape_with_its_own_field_names_is_cleaned_by_naming_them_on_the_command_line(tmp_path):
    rows = [{"梦": f"梦见{k}", "解": f"梦见{k}，预示事业稳步向前，贵人相助，宜踏实肯干，不可急于求成。"}
            for k in ("大象", "白鹤", "古井", "铜镜")]
    (tmp_path / "scrape.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")
    unnamed = cli("data", "clean", "scrape.jsonl", "-o", "out.json", "--no-register", cwd=tmp_path)
    assert unnamed.returncode == 2 and "Name the fields: --title-field 梦 --text-field 解" in unnamed.stderr
    assert not (tmp_path / "out.json").exists()
    named = cli("data", "clean", "scrape.jsonl", "-o", "out.json", "--no-register", "--eval-ratio", "0",
                "--title-field", "梦", "--text-field", "解", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert sorted(asked_dream(r["instruction"]) for r in out) == ["古井", "大象", "白鹤", "铜镜"]
    helped = cli("data", "clean", "--help", cwd=tmp_path)
    assert "PydanticUndefined" not in helped.stdout and "(default: title, name, keyword)" in helped.stdout
