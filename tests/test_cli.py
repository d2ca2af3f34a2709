"""The parindex command, run as a user runs it: a subprocess on a real SQLite file."""

from __future__ import annotations

import contextlib
import unicodedata
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy.stats import rankdata

from parindex_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, db: Path | None = None, cwd: Path | None = None, check: bool = True,
        subprocess_: bool = False) -> subprocess.CompletedProcess:
    """Run ``parindex ARGS``: in this process (fast), or as a subprocess exactly as a user would."""
    argv = (["--db", str(db)] if db is not None else []) + list(args)
    env = {**os.environ, "PARINDEX_EXTERNAL_DIR": str((cwd or ROOT) / "external")}
    env.pop("PARINDEX_DEBUG", None)
    if subprocess_:
        proc = subprocess.run([sys.executable, "-m", "parindex_lib.cli", *argv], capture_output=True, text=True,
                              cwd=cwd or ROOT, env=env, timeout=300)
    else:
        out, err = io.StringIO(), io.StringIO()
        old_env, old_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd or ROOT)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:  # argparse's --help and usage errors
                    code = exc.code or 0
        finally:
            os.chdir(old_cwd)
            os.environ.clear()
            os.environ.update(old_env)
        proc = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"parindex {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "demo.sqlite"
    out = run("demo", db=db)
    assert "demo store ready" in out.stdout and "[DEMO]" in out.stdout
    return db


def csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype={"unit_code": str, "node_code": str})


def test_help_documents_every_command():
    out = run("--help", subprocess_=True).stdout
    for command in ("demo", "serve", "framework", "scores", "results", "external", "correlate"):
        assert command in out
    assert "framework validate" in out or "validate" in run("framework", "--help").stdout
    for sub, words in {("scores",): ["template", "import", "export"],
                       ("framework",): ["validate", "import", "export", "list"],
                       ("external",): ["import", "list", "show"]}.items():
        text = run(*sub, "--help").stdout
        assert all(w in text for w in words), (sub, text)


def test_demo_if_absent_keeps_the_store(demo_db):
    out = run("demo", "--if-absent", db=demo_db)
    assert "already present" in out.stdout


def test_results_ranks_among_the_kind(demo_db):
    table = csv(run("results", "--year", "2024", "--kind", "department", "--format", "csv", db=demo_db).stdout)
    assert list(table.columns) == ["unit_code", "unit_name", "year", "node_code", "level", "points", "max_points",
                                   "index_pct", "rank", "rank_change", "group", "coverage"]
    assert len(table) == 20 and set(table["level"]) == {"index"} and table["unit_code"].str.startswith("S").all()
    # Independent: ranks are scipy's "min" ranks of the points, descending.
    expected = rankdata(-table["points"].to_numpy(), method="min").astype(int)
    assert table["rank"].tolist() == expected.tolist()
    np.testing.assert_allclose(table["index_pct"], table["points"] / table["max_points"] * 100)
    groups = np.select([table["index_pct"] >= 90, table["index_pct"] >= 80, table["index_pct"] >= 70], ["A", "B", "C"], "")
    assert table["group"].fillna("").tolist() == groups.tolist()


def test_rank_change_is_last_years_rank_minus_this_years(demo_db):
    now = csv(run("results", "--year", "2024", "--kind", "commune", db=demo_db).stdout).set_index("unit_code")
    before = csv(run("results", "--year", "2023", "--kind", "commune", db=demo_db).stdout).set_index("unit_code")
    before = before.reindex(now.index)
    assert (now["rank_change"] == before["rank"] - now["rank"]).all()


def test_field_results_sum_to_the_total(demo_db):
    fields = csv(run("results", "--year", "2023", "--level", "field", db=demo_db).stdout)
    total = csv(run("results", "--year", "2023", db=demo_db).stdout).set_index("unit_code")
    assert set(fields["level"]) == {"field"} and fields["node_code"].nunique() == 8
    summed = fields.groupby("unit_code")["points"].sum()
    # The total adds capped bonus and subtracts capped penalty: never more than the caps apart.
    diff = (total["points"] - summed.reindex(total.index)).round(9)
    assert diff.between(-3, 2).all() and (diff == 0).mean() > 0.5


def test_scores_export_csv_to_stdout_matches_the_store(demo_db):
    from parindex_lib.store import Store

    out = csv(run("scores", "export", "--year", "2024", "--format", "csv", db=demo_db).stdout)
    assert list(out.columns[:4]) == ["unit_code", "year", "node_code", "self_score"]
    with Store(str(demo_db)).session(tenant="demo", user="demo") as s:
        stored = s.scores(year=2024)
    assert len(out) == len(stored) == 120 * 90
    merged = out.merge(stored, on=["unit_code", "node_code"], suffixes=("", "_db"))
    np.testing.assert_allclose(merged["self_score"], merged["self_score_db"], equal_nan=True)


def test_template_fill_import_round_trip(demo_db, tmp_path):
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db, db)
    template = tmp_path / "mau.xlsx"
    run("scores", "template", "--year", "2024", "--framework", "demo_department_2024", "--kind", "commune",
        "-o", str(template), db=db)
    wb = openpyxl.load_workbook(template)
    ws = wb.worksheets[0]
    header_row = next(r for r in range(1, 20) if ws.cell(r, 1).value == "unit_code")
    header = [c.value for c in ws[header_row]]
    col_111 = header.index("1.1.1") + 1
    first_unit_row = header_row + 1
    unit = ws.cell(first_unit_row, 1).value
    before = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    current = before[(before["unit_code"] == unit) & (before["node_code"] == "1.1.1")]["self_score"].iloc[0]
    from parindex_lib.framework import load_framework

    node = load_framework("demo_department_2024").node("1.1.1")
    allowed = [p for p, _, _ in node["rubric"]] if node["rubric"] else [0.0, node["max_points"] / 2, node["max_points"]]
    new_value = next(v for v in allowed if v != current)
    ws.cell(first_unit_row, col_111).value = f"{new_value:g}".replace(".", ",")  # decimal comma, as offices write it
    wb.save(template)
    done = run("scores", "import", str(template), "--year", "2024", "--framework", "demo_department_2024", db=db)
    assert "1 changed" in done.stdout, done.stdout
    out = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    value = out[(out["unit_code"] == unit) & (out["node_code"] == "1.1.1")]["self_score"].iloc[0]
    assert value == new_value


def test_bad_import_names_the_cell_and_changes_nothing(demo_db, tmp_path):
    import hashlib
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db, db)
    before = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    bad = tmp_path / "bad.csv"
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("unit_code,year,node_code,self_score,explanation\nX001,2024,1.1.1,0.5,Đã báo cáo\n"
                        .replace("Đã báo cáo", unicodedata.normalize("NFD", "Đã báo cáo")).encode("cp1258"))
    warned = run("scores", "import", str(legacy), "--framework", "demo_department_2024", db=db, subprocess_=True)
    assert "warning" in warned.stderr and "1258" in warned.stderr, warned.stderr
    before = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    bad.write_text("unit_code,year,node_code,self_score\nX001,2024,1.1.1,0.5\nX001,2024,1.1.2,999\nNOPE,2024,1.1.1,1\n",
                   encoding="utf-8")
    out = run("scores", "import", str(bad), "--framework", "demo_department_2024", db=db, check=False,
              subprocess_=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "bad.csv" in out.stderr and "row 3" in out.stderr and "999" in out.stderr and "NOPE" in out.stderr
    after = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    assert hashlib.sha256(before.to_csv().encode()).digest() == hashlib.sha256(after.to_csv().encode()).digest()


def test_framework_validate_reports_every_problem(tmp_path):
    good = run("framework", "validate", str(ROOT / "data/frameworks/demo_department_2024.yaml"))
    assert "88 subcriteria" in good.stdout
    incomplete = run("framework", "validate", "bnv_876_2022_province", check=False)
    assert incomplete.returncode == 3 and "cannot score" in incomplete.stdout and "2" in incomplete.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname_vi: X\nlevel: nowhere\nmax_points: 10\nnodes:\n"
                   "  - {code: '1', name_vi: A, max_points: 4}\n  - {code: '1', name_vi: B, max_points: 5}\n",
                   encoding="utf-8")
    out = run("framework", "validate", str(bad), check=False, subprocess_=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "3 problems" in out.stderr and "level" in out.stderr and "unique code" in out.stderr


def test_framework_sheet_import_and_export(tmp_path, demo_db):
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db, db)
    sheet = tmp_path / "bang_diem.csv"
    sheet.write_text("STT,Nội dung,Điểm tối đa\n1,Chỉ đạo điều hành,\"3,5\"\n1.1,Kế hoạch CCHC,2\n1.2,Báo cáo,\"1,5\"\n"
                     "2,Thủ tục hành chính,6.5\n2.1,Công khai TTHC,6.5\n", encoding="utf-8")
    out = run("framework", "import", str(sheet), "--id", "test_sheet", "--name", "Bộ thử", "--level", "commune",
              "--years", "2024", db=db)
    assert "stored framework test_sheet" in out.stdout
    listed = run("framework", "list", db=db).stdout
    assert "test_sheet" in listed and "demo_department_2024" in listed
    back = tmp_path / "back.yaml"
    run("framework", "export", "test_sheet", "-o", str(back), db=db)
    from parindex_lib.framework import load_framework

    fw = load_framework(back)
    assert fw.max_points == 10 and fw.node("1.2")["max_points"] == 1.5


def test_unknown_tenant_is_refused_cleanly(demo_db):
    out = run("--tenant", "nobody", "results", "--year", "2024", db=demo_db, check=False, subprocess_=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "nobody" in out.stderr


def test_external_show_and_correlate(tmp_path):
    show = csv(run("external", "show", "--index", "PCI", "--year", "2021", "--format", "csv", cwd=tmp_path).stdout)
    assert list(show.columns) == ["province_code", "province_name", "year", "index", "component", "value"]
    qn = show[(show["province_name"] == "Quảng Ninh") & (show["component"] == "total")]["value"]
    assert qn.tolist() == [73.02]
    corr = csv(run("correlate", "--year", "2022", "--method", "pearson", "--format", "csv", cwd=tmp_path).stdout)
    assert list(corr.columns[:10]) == ["x", "y", "year", "method", "n", "r", "ci_low", "ci_high", "p", "p_adj"]


def test_report_writes_a_self_contained_evidence_pack(demo_db, tmp_path):
    out = tmp_path / "pack.html"
    run("report", "--unit", "X001", "--year", "2024", "-o", str(out), db=demo_db)
    html = out.read_text(encoding="utf-8")
    assert "X001" in html and "<script" not in html.lower() and 'src="http' not in html
    results = csv(run("results", "--year", "2024", "--kind", "commune", db=demo_db).stdout)
    total = results.loc[results["unit_code"] == "X001", "points"].iloc[0]
    shown = f"{total:.3f}".rstrip("0").rstrip(".").replace(".", ",")  # Vietnamese decimal comma
    assert f">{shown}<" in html or f">{shown} " in html, shown
    book = tmp_path / "pack.xlsx"
    run("report", "--unit", "X001", "--year", "2024", "--format", "xlsx", "--lang", "en", "-o", str(book), db=demo_db)
    assert len(openpyxl.load_workbook(book).sheetnames) >= 3


def test_tenant_export_import_round_trip(demo_db, tmp_path):
    pack = tmp_path / "demo.parindex.zip"
    out = run("tenant", "export", "-o", str(pack), db=demo_db)
    assert "120 units" in out.stdout and "32400 scores" in out.stdout
    other = tmp_path / "other.sqlite"
    run("--user", "demo", "tenant", "import", str(pack), "--as", "copy", db=other)
    a = csv(run("results", "--year", "2024", "--level", "field", db=demo_db).stdout)
    b = csv(run("--tenant", "copy", "results", "--year", "2024", "--level", "field", db=other).stdout)
    pd.testing.assert_frame_equal(a, b)
    refused = run("--tenant", "copy", "--user", "stranger", "tenant", "export", "-o", str(tmp_path / "x.zip"),
                  db=other, check=False, subprocess_=True)
    assert refused.returncode == 2 and "stranger" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "x.zip").exists()


def test_appraisal_sheet_fill_import_round_trip(demo_db, tmp_path):
    """The council's sheet: pre-filled, filled in, refused without reasons (naming the row), imported with them."""
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db, db)
    before = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    assert {"appraisal_reason", "unit_response", "appraisal_round"} <= set(before.columns)
    unit = sorted(before["unit_code"].unique())[0]
    sheet = tmp_path / "tham_dinh.xlsx"
    done = run("scores", "appraisal-sheet", "--year", "2024", "--framework", "demo_department_2024", "--unit", unit,
               "-o", str(sheet), db=db)
    assert " 1 unit," in done.stdout
    refused = run("scores", "appraisal-sheet", "--year", "2024", "--framework", "demo_department_2024",
                  "--unit", "NOPE", "-o", str(tmp_path / "x.xlsx"), db=db, check=False)
    assert refused.returncode == 2 and "NOPE" in refused.stderr
    wb = openpyxl.load_workbook(sheet)
    ws = wb.worksheets[0]
    header_row = next(r for r in range(1, 20) if ws.cell(r, 1).value == "Mã đơn vị")
    header = [c.value for c in ws[header_row]]
    col = {name: header.index(name) + 1 for name in ("Mã tiêu chí", "Điểm tự chấm", "Điểm tối đa",
                                                    "Điểm thẩm định", "Lý do điều chỉnh")}
    # two leaves with a self score above zero: the council lowers both, gives a reason for one only
    rows = [r for r in range(header_row + 1, ws.max_row + 1)
            if isinstance(ws.cell(r, col["Điểm tự chấm"]).value, (int, float)) and ws.cell(r, col["Điểm tự chấm"]).value > 0
            and ws.cell(r, col["Mã tiêu chí"]).value not in ("1.1.1",)][:2]
    assert len(rows) == 2
    lowered = {}
    for r in rows:
        own = float(ws.cell(r, col["Điểm tự chấm"]).value)
        lowered[ws.cell(r, col["Mã tiêu chí"]).value] = (r, own / 2)
        ws.cell(r, col["Điểm thẩm định"]).value = own / 2
    ws.cell(rows[0], col["Lý do điều chỉnh"]).value = "Thiếu văn bản chứng minh"
    wb.save(sheet)
    out = run("scores", "import", str(sheet), "--framework", "demo_department_2024", db=db, check=False,
              subprocess_=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"row {rows[1]}" in out.stderr and "appraisal_reason" in out.stderr, out.stderr
    assert csv(run("scores", "export", "--year", "2024", db=db).stdout).equals(before)
    ws.cell(rows[1], col["Lý do điều chỉnh"]).value = "Số liệu chưa khớp báo cáo năm"
    wb.save(sheet)
    done = run("scores", "import", str(sheet), "--framework", "demo_department_2024", db=db)
    assert "2 changed" in done.stdout, done.stdout
    after = csv(run("scores", "export", "--year", "2024", db=db).stdout)
    mine = after[after["unit_code"] == unit].set_index("node_code")
    reasons = {rows[0]: "Thiếu văn bản chứng minh", rows[1]: "Số liệu chưa khớp báo cáo năm"}
    for node, (r, value) in lowered.items():
        assert mine.loc[node, "appraised_score"] == pytest.approx(value)
        assert mine.loc[node, "appraisal_reason"] == reasons[r]
    others = after[after["unit_code"] != unit].reset_index(drop=True)
    assert others.equals(before[before["unit_code"] != unit].reset_index(drop=True))
