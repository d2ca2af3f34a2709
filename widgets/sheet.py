"""The state of one scoring sheet (one unit, one year) while an app edits it.

:class:`Sheet` holds what the store returned (values and row versions),
what the person has typed since (drafts, kept as typed: ``"0,5"``), the
evidence list and any conflicts. It has no widgets: the self-assessment and
appraisal apps show it, and the tests drive it directly. Every write goes
through :meth:`parindex_lib.store.TenantSession.save_score`, which checks
the values (range, rubric, survey nodes) and the row version.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from parindex_lib.aggregation import roll_up
from parindex_lib.errors import ConflictError, ValidationError, failure_table
from parindex_lib.framework import Framework
from parindex_lib.numbers import parse_number

__all__ = ["Sheet", "SaveReport", "NUMBER_FIELDS", "TEXT_FIELDS", "blank", "field_layout"]

NUMBER_FIELDS = ("self_score", "appraised_score", "survey_points", "bonus", "penalty")
TEXT_FIELDS = ("explanation", "evidence", "appraisal_reason", "unit_response")
_TOL = 1e-9


def blank(value: Any) -> bool:
    """True for a value that holds nothing: None, ``pd.NA``, NaN, or text of spaces only.

    >>> [blank(v) for v in (None, float("nan"), " ", "", 0, 0.0, "0")]
    [True, True, True, True, False, False, False]
    """
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _number(value: Any) -> float:
    """A number from a stored or typed value; NaN for blank; ValueError for text."""
    if blank(value):
        return math.nan
    return parse_number(value)


def _same(field_name: str, a: Any, b: Any) -> bool:
    if field_name in NUMBER_FIELDS or field_name == "appraisal_round":
        try:
            x, y = _number(a), _number(b)
        except ValueError:
            return False
        if math.isnan(x) and math.isnan(y):
            return True
        return not (math.isnan(x) or math.isnan(y)) and abs(x - y) <= _TOL
    sa = "" if blank(a) else str(a).strip()
    sb = "" if blank(b) else str(b).strip()
    return sa == sb


@dataclass
class SaveReport:
    """What one save did.

    Attributes
    ----------
    saved : list of str
        Node codes written.
    failures : pandas.DataFrame
        The failure table of the values refused (``row`` holds the node code).
    conflicts : dict of str to ConflictError
        Leaves someone else changed since they were read.
    at : datetime
    """

    saved: list[str] = field(default_factory=list)
    failures: pd.DataFrame = field(default_factory=lambda: failure_table([]))
    conflicts: dict[str, ConflictError] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def ok(self) -> bool:
        return self.failures.empty and not self.conflicts


class Sheet:
    """One unit's scores for one year, as stored and as edited.

    Parameters
    ----------
    framework
        The assessment's framework.
    assessment
        As returned by ``TenantSession.assessment``.
    scores
        ``TenantSession.scores(year, unit_codes=[unit], all_leaves=True)``.
    evidence
        ``TenantSession.evidence(unit, year)``.
    unit
        The unit's row (``code``, ``name``, ``kind`` ...).
    """

    def __init__(self, framework: Framework, assessment: Mapping[str, Any], scores: pd.DataFrame,
                 evidence: pd.DataFrame, unit: Mapping[str, Any]):
        self.framework = framework
        self.assessment = dict(assessment)
        self.unit = dict(unit)
        self.unit_code = str(self.assessment["unit_code"])
        self.year = int(self.assessment["year"])
        self.leaves = framework.leaves.set_index("code", drop=False)
        self.stored: dict[str, dict[str, Any]] = {}
        self.drafts: dict[str, dict[str, Any]] = {}
        self.conflicts: dict[str, ConflictError] = {}
        self.saved_at: dt.datetime | None = None
        self.evidence = evidence
        self._take_scores(scores)

    # -- loading -------------------------------------------------------------------
    @classmethod
    def load(cls, session: Any, unit_code: str, year: int) -> "Sheet":
        """Read one assessment, its framework, scores and evidence from the store."""
        assessment = session.assessment(unit_code, year)
        framework = session.framework(assessment["framework_id"])
        scores = session.scores(year=int(year), unit_codes=[unit_code], all_leaves=True)
        evidence = session.evidence(unit_code, year)
        units = session.units()
        unit = units[units["code"] == unit_code].iloc[0].to_dict()
        return cls(framework, assessment, scores, evidence, unit)

    def _take_scores(self, scores: pd.DataFrame) -> None:
        for rec in scores.to_dict("records"):
            code = str(rec["node_code"])
            if code in self.leaves.index:
                rec["version"] = int(rec.get("version") or 0)
                self.stored[code] = rec
        for code in self.leaves.index:
            self.stored.setdefault(code, {"node_code": code, "version": 0})

    def reload(self, session: Any, codes: Iterable[str] | None = None) -> None:
        """Read the stored rows again (all, or some leaves), dropping their drafts."""
        scores = session.scores(year=self.year, unit_codes=[self.unit_code], all_leaves=True)
        wanted = None if codes is None else set(codes)
        for rec in scores.to_dict("records"):
            code = str(rec["node_code"])
            if wanted is not None and code not in wanted:
                continue
            rec["version"] = int(rec.get("version") or 0)
            self.stored[code] = rec
            self.drafts.pop(code, None)
            self.conflicts.pop(code, None)
        self.assessment = dict(session.assessment(self.unit_code, self.year))
        self.evidence = session.evidence(self.unit_code, self.year)

    # -- values ----------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.assessment.get("status"))

    def node(self, code: str) -> pd.Series:
        return self.leaves.loc[code]

    def stored_value(self, code: str, name: str) -> Any:
        return self.stored.get(code, {}).get(name)

    def value(self, code: str, name: str) -> Any:
        """The value as the person sees it: their draft, else the stored one."""
        draft = self.drafts.get(code, {})
        if name in draft:
            return draft[name]
        return self.stored_value(code, name)

    def set(self, code: str, name: str, value: Any) -> None:
        """Record what the person typed or chose (no check here: the store checks on save)."""
        if code not in self.leaves.index:
            raise KeyError(f"{code} is not a leaf of framework {self.framework.id}")
        if _same(name, value, self.stored_value(code, name)):
            self.drafts.get(code, {}).pop(name, None)
            if code in self.drafts and not self.drafts[code]:
                del self.drafts[code]
        else:
            self.drafts.setdefault(code, {})[name] = value

    def changed(self) -> list[str]:
        """Leaves with unsaved changes, in tree order."""
        return [c for c in self.leaves.index if c in self.drafts]

    def number_problem(self, code: str, name: str) -> tuple[str, dict[str, Any]] | None:
        """Why a typed number cannot count in the running totals, for the message beside the input.

        Returns ``("common.not_a_number", {...})``, ``("common.out_of_range",
        {...})`` or None. Display only: the store decides on save.
        """
        raw = self.value(code, name)
        try:
            x = _number(raw)
        except ValueError:
            return ("common.not_a_number", {"value": str(raw)})
        if math.isnan(x):
            return None
        mp = float(self.node(code)["max_points"])
        if x < -_TOL or x > mp + _TOL:
            return ("common.out_of_range", {"value": x, "max": mp})
        return None

    def number(self, code: str, name: str) -> float:
        """The current value as a number; NaN when blank or not countable."""
        if self.number_problem(code, name) is not None:
            return math.nan
        return _number(self.value(code, name))

    def files(self, code: str) -> pd.DataFrame:
        """Evidence files and links attached to one leaf."""
        ev = self.evidence
        if ev is None or ev.empty:
            return pd.DataFrame(columns=["id", "node_code", "kind", "name"])
        return ev[ev["node_code"].astype(str) == code]

    # -- totals ------------------------------------------------------------------------
    def frame(self, columns: Iterable[str] = ("self_score", "survey_points")) -> pd.DataFrame:
        """The current values (drafts included) in the long form, for the roll-up."""
        codes = list(self.leaves.index)
        data: dict[str, Any] = {"unit_code": self.unit_code, "year": self.year, "node_code": codes}
        for name in columns:
            data[name] = np.array([self.number(c, name) if name in NUMBER_FIELDS and name not in ("bonus", "penalty")
                                   else _safe_float(self.value(c, name)) for c in codes], dtype="float64")
        return pd.DataFrame(data)

    def totals(self, columns: Iterable[str] = ("self_score", "survey_points")) -> dict[str, tuple[float, float]]:
        """Points and max_points per node and ``"total"``, from the current values.

        The roll-up is the library's (:func:`parindex_lib.aggregation.roll_up`).
        """
        rolled = roll_up(self.frame(columns), self.framework)
        return {str(c): (float(p), float(mx)) for c, p, mx in
                zip(rolled["node_code"].astype(str), rolled["points"], rolled["max_points"])}

    # -- bonus and penalty (assessment-wide, kept on one leaf row) -------------------------
    def anchor(self) -> str:
        """The leaf whose row carries the assessment's bonus and penalty."""
        for code, rec in self.stored.items():
            if not blank(rec.get("bonus")) or not blank(rec.get("penalty")):
                return code
        selfs = self.leaves[self.leaves["assessed_by"] == "self"]
        return str(selfs.index[0] if len(selfs) else self.leaves.index[0])

    # -- saving -----------------------------------------------------------------------------
    def save(self, session: Any, fields: Iterable[str], *, reason: Callable[[str], str | None] | None = None,
             check: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
             extra: Callable[[str], dict[str, Any]] | None = None, codes: Iterable[str] | None = None) -> SaveReport:
        """Write the changed leaves through ``session.save_score``.

        Parameters
        ----------
        fields
            The fields this app writes (others are never sent).
        reason
            Code -> reason recorded in the audit log.
        check
            Given the merged rows of the changed leaves, returns failure rows
            (``column`` starting with the node code) for leaves that must not
            be written.
        extra
            Code -> values always sent with a changed leaf (e.g. the round).
        codes
            Only these leaves (default: every changed one).

        Returns
        -------
        SaveReport
            Valid leaves are written even when others are refused; nothing
            refused is written.
        """
        fields = tuple(fields)
        report = SaveReport()
        todo = [c for c in (codes if codes is not None else self.changed())
                if any(f in self.drafts.get(c, {}) for f in fields)]
        fails: list[dict[str, Any]] = []
        if check is not None and todo:
            merged = [self.merged(c) for c in todo]
            pre = check(merged)
            blocked = {str(r["column"]).split(":")[0] for r in pre}
            fails.extend({**r, "row": str(r["column"]).split(":")[0]} for r in pre)
            todo = [c for c in todo if c not in blocked]
        for code in todo:
            values = {f: self._outgoing(self.drafts[code][f]) for f in fields if f in self.drafts.get(code, {})}
            if extra is not None:
                values.update(extra(code))
            try:
                version = session.save_score(self.unit_code, self.year, code,
                                             expected_version=int(self.stored[code].get("version") or 0),
                                             reason=reason(code) if reason else None, **values)
            except ValidationError as exc:
                for rec in exc.failures.to_dict("records"):
                    fails.append({**rec, "row": code})
                continue
            except ConflictError as exc:
                self.conflicts[code] = exc
                report.conflicts[code] = exc
                continue
            self._accept(code, values, version)
            report.saved.append(code)
        report.failures = failure_table(fails)
        if report.saved:
            self.saved_at = report.at
        return report

    def merged(self, code: str) -> dict[str, Any]:
        """Stored values with the drafts on top, numbers parsed where they can be."""
        rec = dict(self.stored.get(code, {}))
        rec.update(self.drafts.get(code, {}))
        for name in NUMBER_FIELDS:
            if name in rec:
                try:
                    rec[name] = _number(rec[name])
                except ValueError:
                    pass
        rec["node_code"] = code
        rec["files"] = int((self.files(code)["kind"] == "file").sum()) if len(self.files(code)) else 0
        return rec

    @staticmethod
    def _outgoing(value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    def _accept(self, code: str, values: Mapping[str, Any], version: int) -> None:
        rec = self.stored.setdefault(code, {"node_code": code})
        for name, v in values.items():
            if name in NUMBER_FIELDS:
                rec[name] = _number(v)
            elif name == "appraisal_round":
                rec[name] = v
            else:
                rec[name] = None if blank(v) else str(v).strip()
        rec["version"] = int(version)
        draft = self.drafts.get(code, {})
        for name in values:
            draft.pop(name, None)
        if code in self.drafts and not draft:
            del self.drafts[code]
        self.conflicts.pop(code, None)

    def keep_mine(self, session: Any, code: str, fields: Iterable[str], **kwargs: Any) -> SaveReport:
        """Resolve a conflict by writing this person's value over the other one."""
        exc = self.conflicts.get(code)
        if exc is None:
            return SaveReport()
        self.stored[code]["version"] = int(exc.current_version)
        return self.save(session, fields, codes=[code], **kwargs)

    def keep_theirs(self, session: Any, code: str) -> None:
        """Resolve a conflict by taking the stored value and dropping this person's draft."""
        self.reload(session, [code])


def _safe_float(value: Any) -> float:
    try:
        return _number(value)
    except ValueError:
        return math.nan


def field_layout(framework: Framework, field_code: str) -> list[tuple[str, str]]:
    """The rows of one field's section: ``("criterion", code)`` headings and ``("leaf", code)`` rows, in tree order."""
    nodes = framework.nodes
    out: list[tuple[str, str]] = []
    for child in nodes[nodes["parent_code"] == field_code].itertuples(index=False):
        if child.is_leaf:
            out.append(("leaf", str(child.code)))
            continue
        out.append(("criterion", str(child.code)))
        for leaf in nodes[nodes["parent_code"] == child.code].itertuples(index=False):
            out.append(("leaf", str(leaf.code)))
    return out
