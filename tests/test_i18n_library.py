"""The library's refusals in Vietnamese: every text staff can meet has a translation.

The library writes failure tables and messages in English; the apps show
them through :func:`parindex_lib.i18n.library_text` and
``parindex_lib/locale/library_vi.yaml``. The texts checked here are the
ones real refusals produce: every file of the hostile-file corpus imported
as the import wizard does, the refusals of ``save_score`` (values, rubric,
survey leaves, NUL, the evidence and appraisal rules) and the appraisal rule
of ``write_scores``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from parindex_lib.errors import ParindexError, ValidationError
from parindex_lib.i18n import library_patterns, library_text
from parindex_lib.store import Store

BAD = Path(__file__).parent / "data" / "bad"
VIETNAMESE = re.compile("[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.IGNORECASE)


def _texts(exc: ParindexError) -> list[str]:
    if isinstance(exc, ValidationError):
        return [exc.message, *[str(t) for t in exc.failures.get("expected", pd.Series(dtype=str)).dropna()]]
    return [str(exc)]


#: English words that must not survive a translation (a field that copied English text).
ENGLISH = re.compile(r"\b(the|of|and|is|which|points|between|framework's|cap|assessed|enter|refused|nothing|"
                     r"file|node|unit|score|self|survey)\b")


def _untranslated(texts: dict[str, str]) -> list[str]:
    out = []
    for text, origin in sorted(texts.items()):
        vi = library_text(text, "vi")
        if vi == text or not VIETNAMESE.search(vi) or ENGLISH.search(vi):
            out.append(f"{origin}: {text!r} -> {vi!r}")
    return out


def test_every_refusal_of_the_hostile_corpus_reads_in_vietnamese(tmp_path):
    sys.path.insert(0, str(BAD))
    try:
        import bad_corpus as bc
    finally:
        sys.path.remove(str(BAD))
    url = f"sqlite:///{tmp_path / 'corpus.sqlite'}"
    bc.build_store(url)
    store = Store(url)
    texts: dict[str, str] = {}
    refused = 0
    try:
        for entry in bc.manifest():
            if entry.get("generated") or entry.get("isolate"):
                continue
            try:
                bc.import_file(store, BAD / entry["file"], **(entry.get("args") or {}))
            except ParindexError as exc:
                refused += 1
                for text in _texts(exc):
                    texts.setdefault(text, entry["file"])
    finally:
        store.dispose()
    assert refused >= 50 and len(texts) >= 80
    assert _untranslated(texts) == []


def test_every_refusal_of_a_save_reads_in_vietnamese(sqlite_url, small_framework):
    store = Store(sqlite_url)
    store.add_shared_framework(small_framework)
    store.create_tenant("t", "Sở Nội vụ (thử)", admin_user="ann")
    texts: dict[str, str] = {}
    with store.session(tenant="t", user="ann") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["Sở Tư pháp"], "kind": ["department"]}))
        s.write_scores(pd.DataFrame({"unit_code": ["D01"], "year": [2024], "node_code": ["1.2"], "self_score": [3.0],
                                     "explanation": ["có"]}), source="seed.csv", framework_id=small_framework.id)
        cases = [
            dict(node="1.2", self_score=9), dict(node="1.2", self_score="ba"), dict(node="1.2", self_score=-1),
            dict(node="1.1.1", self_score=0.7), dict(node="2.1", self_score=1), dict(node="1.2", survey_points=1),
            dict(node="1.1", self_score=1), dict(node="1.2", explanation="a\x00b"), dict(node="1.2", explanation=None),
            dict(node="2.2", self_score=1), dict(node="1.2", appraised_score=2), dict(node="1.2", appraisal_round=0),
            dict(node="1.2", bonus=5), dict(node="1.2", penalty=9),
        ]
        for case in cases:
            node = case.pop("node")
            version = 1 if node == "1.2" else 0
            with pytest.raises(ValidationError) as err:
                s.save_score("D01", 2024, node, expected_version=version, **case)
            for text in _texts(err.value):
                texts.setdefault(text, f"save {node} {case}")
        # the appraisal rule on a table
        with pytest.raises(ValidationError) as err:
            s.write_scores(pd.DataFrame({"unit_code": ["D01"], "year": [2024], "node_code": ["1.2"],
                                         "appraised_score": [1.0], "appraisal_reason": [""]}), source="council.xlsx")
        for text in _texts(err.value):
            texts.setdefault(text, "write_scores appraisal rule")
    store.dispose()
    assert len(texts) >= 14
    assert _untranslated(texts) == []


def test_translations_fill_in_the_values_of_the_english_text():
    """Literal expectations: the values are copied, nested pieces translated, English left alone."""
    assert library_text("at most 2 points (max_points of node 2.2)") == "tối đa 2 điểm (điểm tối đa của tiêu chí 2.2)"
    assert library_text("a unit code of this tenant; nearest known: D02, D04, D03") == \
        "mã đơn vị của tổ chức này; gần giống nhất: D02, D04, D03"
    assert library_text("one row per unit, year and node: D02, 2024, 1.2 is also on row 2, 4") == \
        "mỗi đơn vị, năm và tiêu chí một dòng: D02, 2024, 1.2 đã có ở dòng 2, 4"
    assert library_text("an appraisal_reason when the appraised score differs from the self score: "
                        "unit D01, node 1.2 has appraised score 2, no self score") == \
        ("có lý do thẩm định khi điểm thẩm định khác điểm tự chấm: đơn vị D01, tiêu chí 1.2 có điểm thẩm định 2, "
         "không có điểm tự chấm")
    assert library_text("file Bảng điểm 2024.xlsx refused: it is protected by a password") == \
        "Tệp Bảng điểm 2024.xlsx bị từ chối: tệp có đặt mật khẩu."
    assert library_text("appraisal fields change only while the assessment is submitted (unit A01, 2024 is draft)") == \
        "phần thẩm định chỉ sửa được khi bản đánh giá đã nộp (đơn vị A01, năm 2024 đang ở trạng thái bản nháp)"
    assert library_text("scores in forged.xlsx refused: 'eve' (editor) may not change these values; nothing was written") \
        == "Điểm trong forged.xlsx bị từ chối: 'eve' (editor) không được sửa các giá trị này; chưa ghi gì."
    assert library_text("at most 2 points (max_points of node 2.2)", "en") == "at most 2 points (max_points of node 2.2)"
    assert library_text("a text no pattern knows") == "a text no pattern knows"
    assert library_text(None) is None and library_text(3.5) == 3.5


def test_each_pattern_matches_its_own_english_and_keeps_its_fields():
    patterns = library_patterns("vi")
    assert len(patterns) >= 60
    seen = set()
    for english, rx, translated in patterns:
        assert english not in seen, f"{english!r} is listed twice"
        seen.add(english)
        fields = re.findall(r"\{(\w+)\}", english)
        sample = re.sub(r"\{(\w+)\}", lambda m: f"X{m.group(1)}X", english)
        assert rx.fullmatch(sample), english
        # every field of the English reaches the reader (a translation may not drop a code or a number)
        assert sorted(re.findall(r"\{(\w+)\}", translated)) == sorted(fields), english
        assert VIETNAMESE.search(translated), f"{english!r} -> {translated!r} has no Vietnamese letter"


def test_every_refusal_of_an_appraisal_sheet_reads_in_vietnamese(tmp_path, small_framework):
    from parindex_lib.importing import read_scores

    units = pd.DataFrame({"code": ["D01"], "name": ["Sở Tư pháp"], "kind": ["department"]})
    files = {
        "wide.csv": "Mã đơn vị,Năm,1.2,2.2,Lý do điều chỉnh\nD01,2024,3,1,thiếu báo cáo\n",
        "round.csv": "Mã đơn vị,Năm,Mã tiêu chí,Điểm thẩm định,Lý do điều chỉnh,Vòng thẩm định\n"
                     "D01,2024,1.2,3,thiếu,0\nD01,2024,2.2,1,x,một\n",
    }
    texts: dict[str, str] = {}
    for name, body in files.items():
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        with pytest.raises(ValidationError) as err:
            read_scores(path, small_framework, units, wide_score="appraised_score")
        for text in _texts(err.value):
            texts.setdefault(text, name)
    assert len(texts) >= 4
    assert _untranslated(texts) == []
