"""The ``parindex`` command.

Every command reads and writes through a store session bound to one tenant
and one user (``--db``, ``--tenant``, ``--user``; the defaults point at the
embedded SQLite store and the demo tenant). Errors exit non-zero with one
clear message, never a traceback (set ``PARINDEX_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]

DEFAULT_TENANT = "demo"
DEFAULT_USER = "demo"

EPILOG = """\
examples:
  parindex demo                                   create or refresh the demo store
  parindex serve --port 8866                      start the Voilà workbench
  parindex framework validate my_framework.yaml   check a framework file
  parindex framework import bang_diem.xlsx --id hcm_2024_so --level department --years 2024
  parindex scores template --year 2024 -o mau.xlsx
  parindex scores import diem_2024.xlsx --year 2024
  parindex scores export --year 2024 --format csv
  parindex results --year 2024 --level field --kind department --format csv

environment: PARINDEX_DB (store URL), PARINDEX_DEBUG=1 (show tracebacks)
"""


def _add_output(p: argparse.ArgumentParser, formats: Sequence[str] = ("csv", "xlsx")) -> None:
    p.add_argument("--format", choices=formats, default=formats[0], help="output format (default %(default)s)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (csv goes to standard output without -o)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="parindex",
        description="parindex: the open workbench for Vietnam's Administrative Reform Index (PAR INDEX, Chỉ số CCHC).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", metavar="URL", default=os.environ.get("PARINDEX_DB"),
                        help="store URL: a SQLite path or sqlite:///..., or postgresql+psycopg://... "
                             "(default: $PARINDEX_DB, else var/parindex.sqlite)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant code (default %(default)s)")
    parser.add_argument("--user", default=os.environ.get("PARINDEX_USER", DEFAULT_USER),
                        help="user name recorded in the audit log (default %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="create or refresh the embedded demo store",
                       description="Create the demo tenant (a fictional province, labelled as such), its units, "
                                   "three years of seeded scores and the public reference data.")
    p.add_argument("--if-absent", action="store_true", help="do nothing when the demo tenant already exists")
    p.add_argument("--seed", type=int, default=2024, help="random seed (default %(default)s)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="start the Voilà workbench on 127.0.0.1",
                       description="Start Voilà on 127.0.0.1 with preheated kernels, kernel culling, "
                                   "tracebacks hidden and template/theme overrides from the URL off.")
    p.add_argument("--port", type=int, default=8866, help="port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.set_defaults(func=cmd_serve)

    fw = sub.add_parser("framework", help="validate, import, export and list frameworks").add_subparsers(
        dest="framework_command", metavar="ACTION", required=True)
    p = fw.add_parser("validate", help="check a framework YAML file and report every problem")
    p.add_argument("file")
    p.set_defaults(func=cmd_framework_validate)
    p = fw.add_parser("import", help="import a framework from a scoring sheet (STT | content | max points)",
                      description="Read the scoring-sheet layout that provinces publish in their decisions "
                                  "(xlsx or csv; hierarchy from the numbering 1 / 1.1 / 1.1.1 or I / 1 / a) "
                                  "and store it as a framework of the tenant.")
    p.add_argument("sheet")
    p.add_argument("--id", required=True, help="framework id, e.g. hcm_2024_department")
    p.add_argument("--name", help="Vietnamese name (default: the sheet's title row)")
    p.add_argument("--level", choices=("ministry", "province", "department", "district", "commune"),
                   help="unit level (default: guessed from the title, e.g. 'cấp xã')")
    p.add_argument("--years", default="", help="years it applies to, e.g. 2024,2025")
    p.add_argument("--sheet-name", help="worksheet to read (default: the first)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the framework as YAML to FILE")
    p.add_argument("--dry-run", action="store_true", help="check and show, do not store")
    p.set_defaults(func=cmd_framework_import)
    p = fw.add_parser("export", help="write a framework as YAML or as a scoring sheet")
    p.add_argument("framework_id")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help=".yaml, .xlsx or .csv")
    p.set_defaults(func=cmd_framework_export)
    p = fw.add_parser("list", help="frameworks of the tenant and the shared ones")
    p.set_defaults(func=cmd_framework_list)

    sc = sub.add_parser("scores", help="score templates, import and export").add_subparsers(
        dest="scores_command", metavar="ACTION", required=True)
    p = sc.add_parser("template", help="a blank score sheet for the tenant's units")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--framework", help="framework id (default: the one for the units' kind)")
    p.add_argument("--kind", help="only units of this kind")
    p.add_argument("--layout", choices=("wide", "long"), default="wide")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="xlsx or csv (default template_YEAR.xlsx)")
    p.set_defaults(func=cmd_scores_template)
    p = sc.add_parser("import", help="import scores from xlsx or csv (wide or long); all or nothing",
                      description="Validate the whole file, report every problem in one table, "
                                  "then write all rows in one transaction or none.")
    p.add_argument("file")
    p.add_argument("--year", type=int, help="year, when the file has no year column")
    p.add_argument("--framework", help="framework id (default: the one for the units' kind)")
    p.add_argument("--sheet-name", help="worksheet to read (default: the first)")
    p.set_defaults(func=cmd_scores_import)
    p = sc.add_parser("export", help="export scores in the long format (with the appraisal's reasons, "
                                     "responses and rounds: the file imports back as it is)")
    p.add_argument("--year", type=int, required=True)
    _add_output(p)
    p.set_defaults(func=cmd_scores_export)
    p = sc.add_parser("appraisal-sheet", help="the sheet an appraisal council fills in (appraised scores and "
                                              "reasons), pre-filled with the stored scores",
                      description="One row per unit and self-assessed leaf; fill in Điểm thẩm định and, where it "
                                  "differs from the self score, Lý do điều chỉnh; import it back with "
                                  "'parindex scores import'.")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--framework", help="framework id (default: the one for the units' kind)")
    p.add_argument("--kind", help="only units of this kind")
    p.add_argument("--unit", action="append", metavar="CODE", help="only this unit (repeat for several)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="xlsx or csv (default appraisal_YEAR.xlsx)")
    p.set_defaults(func=cmd_scores_appraisal_sheet)

    p = sub.add_parser("results", help="points, index %%, ranks and groups per unit and node",
                       description="One row per unit and node: unit_code, unit_name, year, node_code, level, "
                                   "points, max_points, index_pct, rank, rank_change, group, coverage. With "
                                   "--kind, ranks are among units of that kind.")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--level", choices=("index", "field", "criterion", "subcriterion"), default="index")
    p.add_argument("--kind", choices=("ministry", "province", "department", "district", "commune"))
    _add_output(p)
    p.set_defaults(func=cmd_results)

    tn = sub.add_parser("tenant", help="move a tenant's whole data to one file and back").add_subparsers(
        dest="tenant_command", metavar="ACTION", required=True)
    p = tn.add_parser("export", help="write the tenant (frameworks, units, assessments, scores, evidence, audit, "
                                     "members) to one verified file (admins only)")
    p.add_argument("-o", "--output", metavar="FILE", help="default <tenant>.parindex.zip")
    p.set_defaults(func=cmd_tenant_export)
    p = tn.add_parser("import", help="create a tenant from a tenant file, all or nothing",
                      description="Maintenance: on PostgreSQL run it with the owner's URL (--db).")
    p.add_argument("file")
    p.add_argument("--as", dest="as_", metavar="CODE", help="tenant code to create (default: the file's)")
    p.add_argument("--name", help="tenant name (default: the file's)")
    p.set_defaults(func=cmd_tenant_import)

    p = sub.add_parser("report", help="the evidence pack of a unit and year (html, xlsx or pdf)",
                       description="Results, points lost against the median and the best of the unit's kind, "
                                   "priorities, targets and the action plan, in one self-contained file.")
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--format", choices=("html", "xlsx", "pdf"), default="html")
    p.add_argument("--lang", choices=("vi", "en"), default="vi")
    p.add_argument("-o", "--output", metavar="FILE", required=True)
    p.set_defaults(func=cmd_report)

    _add_research_commands(sub)
    return parser


# -- helpers ----------------------------------------------------------------

def _store(args: argparse.Namespace):
    from .store import Store

    return Store(args.db)


def _session(args: argparse.Namespace):
    return _store(args).session(tenant=args.tenant, user=args.user)


def _emit(df, args: argparse.Namespace, default_name: str) -> None:
    from .exporting import write_table

    fmt = args.format
    if args.output:
        write_table(df, args.output, format=fmt)
        print(f"wrote {len(df)} rows to {args.output}", file=sys.stderr)
    elif fmt == "csv":
        write_table(df, sys.stdout, format="csv")
    else:
        write_table(df, default_name, format=fmt)
        print(f"wrote {len(df)} rows to {default_name}", file=sys.stderr)


# -- commands ---------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import build_demo_store

    summary = build_demo_store(args.db, seed=args.seed, if_absent=args.if_absent)
    print(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(port=args.port, ip=args.ip, db=args.db, tenant=args.tenant, user=args.user)


def cmd_framework_validate(args: argparse.Namespace) -> int:
    from .framework import load_framework

    fw = load_framework(args.file)
    counts = fw.counts()
    print(f"{args.file}: framework {fw.id} ({fw.status}) loads: {counts['field']} fields, "
          f"{counts['criterion']} criteria, {counts['subcriterion']} subcriteria, {fw.max_points:g} points")
    if not fw.scorable:
        missing = fw.unknown_points() + fw.missing_children()
        print(f"  browsing only: cannot score until these are known: {', '.join(missing)}")
        return 3
    return 0


def cmd_framework_import(args: argparse.Namespace) -> int:
    from .framework import framework_to_yaml
    from .framework_sheet import read_framework_sheet

    years = [int(y) for y in args.years.replace(" ", "").split(",") if y]
    fw = read_framework_sheet(args.sheet, sheet=args.sheet_name, id=args.id,
                              name_vi=args.name, level=args.level, years=years)
    counts = fw.counts()
    print(f"{args.sheet}: {counts['field']} fields, {counts['criterion']} criteria, "
          f"{counts['subcriterion']} subcriteria, {fw.max_points:g} points")
    if args.output:
        Path(args.output).write_text(framework_to_yaml(fw), encoding="utf-8")
        print(f"wrote {args.output}")
    if not args.dry_run:
        with _session(args) as s:
            s.add_framework(fw)
        print(f"stored framework {fw.id} in tenant {args.tenant}")
    return 0


def cmd_framework_export(args: argparse.Namespace) -> int:
    from .framework import framework_to_yaml

    with _session(args) as s:
        fw = s.framework(args.framework_id)
    out = Path(args.output)
    if out.suffix.lower() in (".yaml", ".yml"):
        out.write_text(framework_to_yaml(fw), encoding="utf-8")
    else:
        from .framework_sheet import write_framework_sheet

        write_framework_sheet(fw, out)
    print(f"wrote {out}")
    return 0


def cmd_framework_list(args: argparse.Namespace) -> int:
    with _session(args) as s:
        table = s.frameworks()
    print(table.to_string(index=False))
    return 0


def _framework_for(s, framework_id: str | None, kind: str | None, year: int | None):
    """The framework to use for a template or an import."""
    from .errors import NotFound

    if framework_id:
        return s.framework(framework_id)
    table = s.frameworks()
    candidates = []
    for fid in table["framework_id"]:
        fw = s.framework(fid)
        if not fw.scorable:
            continue
        if kind and kind not in fw.kinds:
            continue
        if year and fw.years and year not in fw.years:
            continue
        candidates.append(fw)
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(f.id for f in candidates) or "none"
    raise NotFound(f"choose a framework with --framework (scorable frameworks for this year and kind: {names})")


def cmd_scores_template(args: argparse.Namespace) -> int:
    from .importing import score_template

    with _session(args) as s:
        fw = _framework_for(s, args.framework, args.kind, args.year)
        units = s.units()
    units = units[units["kind"].isin(fw.kinds)]
    if args.kind:
        units = units[units["kind"] == args.kind]
    out = args.output or f"template_{args.year}.xlsx"
    score_template(fw, units, args.year, out, layout=args.layout)
    print(f"wrote {out}: {len(units)} units, {len(fw.leaves)} leaves of {fw.id}")
    return 0


def cmd_scores_import(args: argparse.Namespace) -> int:
    from .importing import read_scores

    with _session(args) as s:
        units = s.units()
        fw = _framework_for(s, args.framework, None, args.year)
        scores = read_scores(args.file, fw, units, year=args.year, sheet=args.sheet_name)
        counts = s.write_scores(scores, framework_id=fw.id, source=str(args.file))
    for warning in scores.attrs.get("warnings", []):
        print(f"parindex: warning: {warning}", file=sys.stderr)
    years = ", ".join(map(str, _unique_years(scores["year"])))
    print(f"imported {args.file}: {counts['rows']} rows for {scores['unit_code'].nunique()} units, years {years}: "
          f"{counts['inserted']} new, {counts['updated']} changed, {counts['unchanged']} unchanged; "
          f"{counts['assessments_created']} assessments created")
    return 0


def cmd_scores_export(args: argparse.Namespace) -> int:
    from .exporting import LONG_COLUMNS
    from .importing import APPRAISAL_COLUMNS

    with _session(args) as s:
        scores = s.scores(year=args.year)
    _emit(scores[LONG_COLUMNS + list(APPRAISAL_COLUMNS)], args, f"scores_{args.year}.{args.format}")
    return 0


def cmd_scores_appraisal_sheet(args: argparse.Namespace) -> int:
    from .errors import ValidationError
    from .exporting import write_appraisal_sheet

    with _session(args) as s:
        fw = _framework_for(s, args.framework, args.kind, args.year)
        units = s.units()
        scores = s.scores(year=args.year)
    units = units[units["kind"].isin(fw.kinds)]
    if args.kind:
        units = units[units["kind"] == args.kind]
    if args.unit:
        unknown = sorted(set(args.unit) - set(units["code"]))
        if unknown:
            raise ValidationError("units not in the tenant (or not scored with this framework)", [
                {"column": "--unit", "value": u, "expected": f"a unit code scored with {fw.id}"} for u in unknown])
        units = units[units["code"].isin(args.unit)]
    scores = scores[scores["unit_code"].isin(units["code"])]
    if scores.empty:
        raise ValidationError(f"no scores of {args.year} to appraise", [
            {"column": "--year", "value": args.year, "expected": "a year with self-assessments of these units"}])
    out = args.output or f"appraisal_{args.year}.xlsx"
    written = write_appraisal_sheet(scores, fw, out, units=units)
    n_units = written["unit_code"].nunique()
    print(f"wrote {out}: {len(written)} rows, {n_units} unit{'' if n_units == 1 else 's'}, framework {fw.id}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from .results import session_results

    with _session(args) as s:
        table = session_results(s, year=args.year, level=args.level, kind=args.kind)
    _emit(table, args, f"results_{args.year}.{args.format}")
    return 0


def cmd_tenant_export(args: argparse.Namespace) -> int:
    from .tenant_transfer import export_tenant

    out = args.output or f"{args.tenant}.parindex.zip"
    with _session(args) as s:
        summary = export_tenant(s, out)
    counts = ", ".join(f"{meta['rows']} {Path(name).stem}" for name, meta in sorted(summary["files"].items())
                       if name.startswith("tables/"))
    print(f"wrote tenant {args.tenant} to {out}: {counts}")
    return 0


def cmd_tenant_import(args: argparse.Namespace) -> int:
    from .tenant_transfer import import_tenant

    summary = import_tenant(_store(args), args.file, user=args.user, tenant=args.as_, name=args.name)
    rows = ", ".join(f"{n} {table}" for table, n in summary["rows"].items())
    print(f"imported tenant {summary['tenant']} from {args.file}: {rows}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import reporting

    with _session(args) as s:
        pack = reporting.collect_evidence(s, args.unit, args.year)
    writer = {"html": None, "xlsx": reporting.evidence_pack_xlsx, "pdf": reporting.evidence_pack_pdf}[args.format]
    if writer is None:
        Path(args.output).write_text(reporting.evidence_pack_html(pack, lang=args.lang), encoding="utf-8")
    else:
        writer(pack, path=args.output, lang=args.lang)
    print(f"wrote {args.output}")
    return 0


def _add_research_commands(sub) -> None:
    """The reference-data and correlation commands."""
    ext = sub.add_parser("external", help="published PCI, PAPI, SIPAS and PAR figures (reference data)").add_subparsers(
        dest="external_command", metavar="ACTION", required=True)
    p = ext.add_parser("import", help="import a province table published by VCCI, PAPI or BNV (xlsx/csv)",
                       description="Read a wide province table (a province column and value columns) or the "
                                   "project's long format; every province name is matched to its official code "
                                   "and every unmatched name is reported.")
    p.add_argument("file")
    p.add_argument("--index", required=True, choices=("PCI", "PAPI", "SIPAS", "PAR"))
    p.add_argument("--year", type=int, help="year, when the file has no year column")
    p.add_argument("--sheet-name", help="worksheet to read")
    p.add_argument("--source-url", help="where the figures were published")
    p.set_defaults(func=cmd_external_import)
    p = ext.add_parser("list", help="reference data available per index and year, with its sources")
    p.set_defaults(func=cmd_external_list)
    p = ext.add_parser("show", help="reference values, one row per province, year and component")
    p.add_argument("--index", choices=("PCI", "PAPI", "SIPAS", "PAR"))
    p.add_argument("--year", type=int)
    p.add_argument("--component", help="e.g. total, entry_costs, field3")
    _add_output(p)
    p.set_defaults(func=cmd_external_show)

    p = sub.add_parser("correlate", help="correlate PAR INDEX (total and fields) with PCI, PAPI and SIPAS",
                       description="One row per pair: x, y, year, method, n, r, ci_low, ci_high, p, p_adj "
                                   "(Benjamini-Hochberg), with notes (SIPAS is part of PAR field 8).")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--year", type=int)
    when.add_argument("--pooled", action="store_true", help="pool every year")
    p.add_argument("--method", choices=("pearson", "spearman", "kendall"), default="pearson")
    p.add_argument("--x", default="PAR", help="comma-separated variables on one side (default PAR)")
    p.add_argument("--y", default="PCI,PAPI,SIPAS", help="comma-separated other side (default PCI,PAPI,SIPAS)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for rank methods")
    p.add_argument("--seed", type=int, default=0)
    _add_output(p)
    p.set_defaults(func=cmd_correlate)


def _external_dir() -> Path:
    """Where imported reference files are kept ($PARINDEX_EXTERNAL_DIR, else var/external)."""
    return Path(os.environ.get("PARINDEX_EXTERNAL_DIR", "var/external"))


def cmd_external_import(args: argparse.Namespace) -> int:
    from .external import import_external_file

    options = {k: v for k, v in {"sheet": args.sheet_name, "source_url": args.source_url}.items() if v}
    rows = import_external_file(args.file, args.index, args.year, directory=_external_dir(), **options)
    years = ", ".join(map(str, sorted(_unique_years(rows["year"]))))
    print(f"imported {args.file}: {len(rows)} values of {args.index} for "
          f"{rows['province_code'].nunique()} provinces, years {years} (kept in {_external_dir()})")
    return 0


def _unique_years(values) -> list[int]:
    return list(dict.fromkeys(int(v) for v in values))


def cmd_external_list(args: argparse.Namespace) -> int:
    from .external import external_catalogue, external_list

    print(external_list(directory=_external_dir()).to_string(index=False))
    print()
    cat = external_catalogue()[["index", "publisher", "address", "licence", "date_read"]]
    print(cat.to_string(index=False))
    return 0


def cmd_external_show(args: argparse.Namespace) -> int:
    from .external import external_show

    table = external_show(args.index, args.year, component=args.component, directory=_external_dir())
    _emit(table, args, f"external_{args.index or 'all'}.{args.format}")
    return 0


def cmd_correlate(args: argparse.Namespace) -> int:
    from .correlation import reference_study

    split = lambda text: [v.strip() for v in text.split(",") if v.strip()]  # noqa: E731
    table = reference_study(year=args.year, pooled=args.pooled, method=args.method, x=split(args.x),
                            y=split(args.y), n_boot=args.n_boot, seed=args.seed, directory=_external_dir())
    _emit(table, args, f"correlations.{args.format}")
    return 0


# -- entry point ------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .errors import ParindexError

    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except ParindexError as exc:
        print(f"parindex: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"parindex: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one message, no traceback
        if os.environ.get("PARINDEX_DEBUG"):
            raise
        print(f"parindex: internal error: {type(exc).__name__}: {exc} (set PARINDEX_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
