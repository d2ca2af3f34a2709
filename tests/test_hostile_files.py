"""The hostile-file corpus (``tests/data/bad``), imported through the full path into a real store.

Each file of ``tests/data/bad/manifest.yaml`` is imported the way the
workbench does it (``read_scores`` then ``TenantSession.write_scores``) into
a copy of a SQLite store that already holds scores of two tenants. A refused
or invalid file must give a failure table naming the file and, for every
problem, the row, column and value (checked against the manifest), and must
leave every row of the store as it was (a checksum over all tables). A file
that imports must give exactly the numbers it holds, and importing it again
must change nothing. A few files also go through the ``parindex`` command.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import numbers
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "data" / "bad"))
import bad_corpus as bc  # noqa: E402

from parindex_lib.errors import FAILURE_COLUMNS, FileRefused, ParindexError, ValidationError  # noqa: E402
from parindex_lib.exporting import write_scores_file  # noqa: E402
from parindex_lib.importing import read_scores  # noqa: E402
from parindex_lib.store import Store  # noqa: E402

ENTRIES = bc.manifest()
BY_NAME = {e["file"]: e for e in ENTRIES}


def _param(entry: dict):
    marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
    return pytest.param(entry, id=entry["file"], marks=marks)


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A SQLite store built once by bad_corpus.build_store, checkpointed into one file."""
    path = tmp_path_factory.mktemp("template") / "store.sqlite"
    bc.build_store(f"sqlite:///{path}")
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Where the big and dangerous files are made (once per module)."""
    return tmp_path_factory.mktemp("generated")


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def store(db_path: Path):
    s = Store(f"sqlite:///{db_path}")
    yield s
    s.dispose()


# -- checking failure tables against the manifest --------------------------------------------

def _same(actual, wanted) -> bool:
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return actual is wanted or (isinstance(actual, bool) and actual == wanted)
    if isinstance(wanted, numbers.Number) and isinstance(actual, numbers.Number):
        return math.isclose(float(actual), float(wanted), rel_tol=0, abs_tol=1e-9)
    if isinstance(actual, (dt.date, dt.datetime)):
        return actual.isoformat()[:len(str(wanted))] == str(wanted)
    return isinstance(actual, str) and isinstance(wanted, str) and actual == wanted


def _matches(failure: dict, spec: dict) -> bool:
    for key, wanted in spec.items():
        if key in ("row", "column"):
            if failure[key] != wanted:
                return False
        elif key == "value":
            if not _same(failure["value"], wanted):
                return False
        elif key == "value~":
            if str(wanted).lower() not in str(failure["value"]).lower():
                return False
        elif key == "expected~":
            if str(wanted) not in str(failure["expected"]):
                return False
        else:
            raise KeyError(f"unknown key {key!r} in the manifest")
    return True


def check_failures(err: ValidationError, entry: dict, path: Path) -> None:
    table = err.failures
    assert list(table.columns) == FAILURE_COLUMNS
    assert len(table) >= 1
    assert (table["file"] == path.name).all(), table
    assert table["expected"].map(lambda x: isinstance(x, str) and len(x) > 5).all(), table
    if "count" in entry:
        assert len(table) == entry["count"], str(err)
    records = table.to_dict("records")
    for spec in entry.get("failures", []):
        assert any(_matches(f, spec) for f in records), f"no failure matches {spec}:\n{err}"
    if entry["outcome"] == "invalid":
        # every problem inside the table names its row (or the header row) and its column
        for f in records:
            if f["column"] is not None:
                assert f["row"] is not None or f["column"] == "year", f
    assert path.name in str(err)


def run_isolated(db_path: Path, path: Path, args: dict) -> dict:
    """Import in a child process limited to 3 GiB of address space; its outcome as a dict."""
    code = f"""
import json, sys
sys.path.insert(0, {str(Path(bc.__file__).parent)!r})
import bad_corpus as bc
from parindex_lib.errors import FileRefused, ValidationError
from parindex_lib.store import Store
store = Store({f'sqlite:///{db_path}'!r}, upgrade=False)
try:
    bc.import_file(store, {str(path)!r}, **{args!r})
    out = {{"outcome": "imported"}}
except FileRefused as e:
    out = {{"outcome": "refused", "message": str(e), "failures": e.failures.astype(str).to_dict("records")}}
except ValidationError as e:
    out = {{"outcome": "invalid", "message": str(e), "failures": e.failures.astype(str).to_dict("records")}}
print(json.dumps(out))
"""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, cwd=db_path.parent)
    assert proc.returncode == 0, (f"the importing process died (exit status {proc.returncode}): "
                                  f"{proc.stderr.strip().splitlines()[:2]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stored_scores(store: Store) -> pd.DataFrame:
    with store.session(tenant=bc.TENANT, user=bc.USER) as s:
        return s.scores()


# -- the corpus -----------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_hostile_file(entry, store, db_path, generated):
    path = bc.make(entry["file"], generated)
    args = entry.get("args", {})
    before = bc.store_checksum(store.engine)

    if entry.get("isolate"):
        out = run_isolated(db_path, path, args)
        assert out["outcome"] == entry["outcome"], out
        for spec in entry.get("failures", []):
            assert any(_matches(f, spec) for f in out["failures"]), out
        assert bc.store_checksum(store.engine) == before
        return

    try:
        scores, counts = bc.import_file(store, path, **args)
        outcome, err = "imported", None
    except FileRefused as exc:
        outcome, err = "refused", exc
    except ValidationError as exc:
        outcome, err = "invalid", exc
    after = bc.store_checksum(store.engine)
    assert outcome == entry["outcome"], f"{outcome}: {err}"

    if outcome != "imported":
        check_failures(err, entry, path)
        assert after == before, "the store changed although the file was refused"
        return

    # imported: exactly the numbers of the file, all of them, and nothing else
    got = scores[["unit_code", "node_code", "self_score"]].values.tolist()
    wanted = [[u, str(c), float(v)] for u, c, v in entry["scores"]]
    assert [[u, c, float(v)] for u, c, v in got] == wanted
    assert counts["rows"] == len(wanted)
    if "sheet" in entry:
        assert scores.attrs["source"]["sheet"] == entry["sheet"]
    warnings = scores.attrs["warnings"]
    if "warning" in entry:
        assert any(entry["warning"] in w for w in warnings), warnings
    else:
        assert warnings == []
    table = stored_scores(store).set_index(["unit_code", "node_code"])
    for u, c, v in wanted:
        assert table.loc[(u, c), "self_score"] == v
        assert table.loc[(u, c), "year"] == 2024
    assert after != before
    # importing the same file again changes nothing
    _, again = bc.import_file(store, path, **args)
    assert (again["inserted"], again["updated"], again["audit_rows"]) == (0, 0, 0)
    assert bc.store_checksum(store.engine) == after


def test_the_corpus_is_complete_small_and_reproducible(tmp_path):
    names = [e["file"] for e in ENTRIES]
    assert len(names) == len(set(names))
    assert len(names) >= 40
    committed = {e["file"] for e in ENTRIES if not e.get("generated")}
    on_disk = {p.name for p in bc.HERE.iterdir() if p.is_file() and p.name not in bc.NOT_CORPUS}
    assert committed == on_disk
    assert {e["file"] for e in ENTRIES if e.get("generated")} == set(bc.GENERATED)
    assert set(bc.FILES) == committed
    assert sum((bc.HERE / n).stat().st_size for n in committed) < 2_000_000
    for e in ENTRIES:
        assert e["outcome"] in ("refused", "invalid", "imported"), e
        assert e.get("what"), e
        assert (e["outcome"] == "imported") == ("scores" in e), e
    # the committed files are what bad_corpus.py writes, byte for byte
    for name, make in bc.FILES.items():
        make(tmp_path / name)
        assert (tmp_path / name).read_bytes() == (bc.HERE / name).read_bytes(), name


# -- what the generic test cannot say --------------------------------------------------------

def test_nfd_text_is_stored_as_nfc(store):
    bc.import_file(store, bc.HERE / "nfd_everything.csv")
    text = stored_scores(store).set_index(["unit_code", "node_code"]).loc[("D02", "1.2"), "explanation"]
    assert text == "Đã hoàn thành, đúng tiến độ"
    assert unicodedata.is_normalized("NFC", text)


def test_windows_1258_text_arrives_intact(store):
    scores, _ = bc.import_file(store, bc.HERE / "windows_1258.csv")
    assert scores["explanation"].tolist() == [r[4] for r in bc.GOOD]
    assert stored_scores(store).set_index(["unit_code", "node_code"]).loc[("D02", "1.2"), "explanation"] \
        == "Báo cáo đủ, một báo cáo chậm"


def test_tcvn3_is_detected_and_read_as_unicode(store):
    """TCVN3 (the ABC code of the .VnTime fonts) has no marker, but reads as clearly more Vietnamese
    than Windows-1258 does ("Së ®· b¸o c¸o"): the importer takes it as TCVN3 and warns."""
    scores, _ = bc.import_file(store, bc.HERE / "tcvn3.csv")
    assert "read as TCVN3" in scores.attrs["warnings"][0]
    text = scores.set_index("node_code")["explanation"]
    assert text.loc["1.2"] == "Sở đã báo cáo đầy đủ"
    assert text.loc["2.2"] == "Hồ sơ đúng hạn"
    assert scores["self_score"].tolist() == [4.0, 2.0]


@pytest.mark.parametrize("name", ["formula_injection.csv", "formula_injection.xlsx"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_injection_is_text_in_and_escaped_out(store, tmp_path, name, fmt):
    scores, _ = bc.import_file(store, bc.HERE / name)
    stored = stored_scores(store)
    stored = stored[stored["unit_code"] == scores["unit_code"].iloc[0]].reset_index(drop=True)
    # stored exactly as text (the apostrophe that escaped one of them in the workbook is gone)
    assert stored["explanation"].tolist() == scores["explanation"].tolist()
    payloads = set(stored["explanation"]) | set(stored["evidence"])
    assert payloads <= {p.strip() for p in bc.INJECTIONS}
    assert all(p[0] in "=+-@" for p in payloads)

    out = tmp_path / f"export.{fmt}"
    write_scores_file(stored, out, format=fmt)
    if fmt == "csv":
        with out.open(encoding="utf-8-sig", newline="") as fh:
            cells = [c for row in list(csv.reader(fh))[1:] for c in row]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
        assert {"'" + p for p in payloads} <= set(cells)
    else:
        ws = openpyxl.load_workbook(out).active
        cells = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert all(c.data_type == "s" for c in cells)  # text cells, never formulas
        assert {"'" + p for p in payloads} <= {c.value for c in cells}
    # reading the export back gives the text that was imported
    back = read_scores(out, bc.framework(), bc.units())
    assert back["explanation"].tolist() == stored["explanation"].tolist()
    assert back["evidence"].tolist() == stored["evidence"].tolist()



def test_text_with_a_carriage_return_survives_a_csv_export(tmp_path):
    """Found by tests/test_fuzz_import.py: an explanation "dòng 1\\rdòng 2" (a bare CR, as some
    programs write a line break inside a cell) is imported from xlsx and stored, but the CSV export
    breaks its row in two."""
    scores = pd.DataFrame({"unit_code": ["D01", "D02"], "year": 2024, "node_code": ["1.2", "1.2"],
                           "self_score": [1.0, 2.0], "explanation": ["dòng 1\rdòng 2", "x"], "evidence": ""})
    out = tmp_path / "export.csv"
    write_scores_file(scores, out)
    back = read_scores(out, bc.framework(), bc.units())
    assert back["explanation"].tolist() == ["dòng 1\rdòng 2", "x"]

def test_another_tenants_unit_is_not_reached(store):
    with pytest.raises(ValidationError) as info:
        bc.import_file(store, bc.HERE / "unknown_units.csv")
    assert "E01" in info.value.failures["value"].tolist()
    with store.session(tenant=bc.OTHER_TENANT, user=bc.OTHER_USER) as s:
        assert s.scores()[["unit_code", "node_code", "self_score", "version"]].values.tolist() == [["E01", "1.2", 2.0, 1]]
    # nothing in the message tells that E01 exists elsewhere
    assert bc.OTHER_TENANT not in str(info.value)


# -- through the command line ---------------------------------------------------------------

def _file_digest(db: Path) -> str:
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return hashlib.sha256(db.read_bytes()).hexdigest()


CLI_CASES = {
    "over_maximum.csv": ["row 2", "column self_score", "'5,5'", "at most 5 points"],
    "unknown_units.csv": ["row 2", "column unit_code", "'D99'", "row 4", "'E01'"],
    "formulas_no_cached_values.xlsx": ["sheet Điểm", "row 2", "column self_score", "=0.5+0.5"],
    "headers_missing_unit_code.csv": ["row 1", "column unit_code", "headers found"],
    "xml_entity_bomb.xlsx": ["refused", "DOCTYPE"],
    "csv_renamed.xlsx": ["refused", "not an Excel workbook"],
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_command_line_import_refuses_and_leaves_the_store(db_path, name):
    digest = _file_digest(db_path)
    with Store(f"sqlite:///{db_path}") as s:
        rows = bc.store_checksum(s.engine)
    proc = subprocess.run(
        [sys.executable, "-m", "parindex_lib.cli", "--db", str(db_path), "--tenant", bc.TENANT, "--user", bc.USER,
         "scores", "import", str(bc.HERE / name), "--framework", bc.FRAMEWORK_ID],
        capture_output=True, text=True, timeout=120, cwd=db_path.parent, env={**os.environ, "PARINDEX_DEBUG": ""})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("parindex: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert name in proc.stderr
    for part in CLI_CASES[name]:
        assert part in proc.stderr, (part, proc.stderr)
    with Store(f"sqlite:///{db_path}") as s:
        assert bc.store_checksum(s.engine) == rows
    assert _file_digest(db_path) == digest


def test_command_line_import_of_a_clean_file(db_path):
    proc = subprocess.run(
        [sys.executable, "-m", "parindex_lib.cli", "--db", str(db_path), "--tenant", bc.TENANT, "--user", bc.USER,
         "scores", "import", str(bc.HERE / "decimal_comma_semicolon.csv"), "--framework", bc.FRAMEWORK_ID],
        capture_output=True, text=True, timeout=120, cwd=db_path.parent)
    assert proc.returncode == 0, proc.stderr
    with Store(f"sqlite:///{db_path}") as s:
        table = stored_scores(s)
    got = table[table["unit_code"] == "D02"].set_index("node_code")["self_score"].to_dict()
    assert got == {"1.1.1": 0.5, "1.1.2": 1.25, "1.2": 4.75, "2.2": 1.5}


# -- PostgreSQL ------------------------------------------------------------------------------

@pytest.mark.postgres
def test_nul_in_text_on_postgres_is_a_failure_table(pg_url):
    bc.build_store(pg_url)
    with Store(pg_url) as store:
        before = bc.store_checksum(store.engine)
        try:
            with pytest.raises(ValidationError) as info:
                bc.import_file(store, bc.HERE / "nul_in_text_utf16.csv")
            assert info.value.failures.loc[0, "row"] == 2
        finally:
            assert bc.store_checksum(store.engine) == before

