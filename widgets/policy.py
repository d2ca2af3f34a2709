"""Who may use which app, and the checks the apps make before saving.

The apps ask these functions rather than deciding themselves. Who may write
what is the library's (:mod:`parindex_lib.roles`, enforced by the store).
The checks here come on top, for the apps:

- the self-assessment app never changes a submitted sheet, or one past its
  deadline, whoever the visitor is (the library lets an admin);
- the appraisal app writes only while the sheet is submitted.

The business rules are the library's, and ``TenantSession.save_score``
enforces them for every caller: a self score on a leaf that requires
evidence needs evidence or an explanation, and an appraised score that
differs from the self score needs a reason. :func:`missing_explanations`
and :func:`missing_reasons` ask the library's rules
(:func:`parindex_lib.store.needs_explanation`,
:func:`parindex_lib.store.needs_reason`) before saving, to name every leaf
at once in the apps' words.

They run in Python on the server, before anything is written, whatever the
browser sent.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable, Mapping

import pandas as pd

from parindex_lib.errors import AccessDenied

__all__ = ["APPS", "apps_for_role", "may_use", "editable_units", "lock_reason", "require_open_sheet", "require_appraisable",
           "missing_explanations", "missing_reasons"]

#: The apps in the order the index lists them, with the roles that may use each.
APPS: dict[str, tuple[str, ...]] = {
    "self_assessment": ("admin", "editor"),
    "appraisal": ("admin", "appraiser"),
    "import_wizard": ("admin",),
    "results": ("admin", "appraiser", "editor", "analyst", "researcher"),
    "planner": ("admin", "appraiser", "editor", "analyst", "researcher"),
    "correlation": ("admin", "appraiser", "editor", "analyst", "researcher"),
}


def apps_for_role(role: str) -> list[str]:
    """The apps a member with ``role`` may use, in index order."""
    return [name for name, roles in APPS.items() if role in roles]


def may_use(role: str, app: str) -> bool:
    return role in APPS.get(app, ())


def editable_units(role: str, unit_codes: Iterable[str] | None, units: pd.DataFrame) -> pd.DataFrame:
    """The units a member may self-assess (the library's rule: admins any, editors their own)."""
    from parindex_lib.roles import editable_unit_codes

    codes = editable_unit_codes(role, unit_codes, units["code"].tolist())
    return units[units["code"].isin(codes)]


def lock_reason(assessment: Mapping[str, Any], now: dt.datetime | None = None) -> tuple[str, str] | None:
    """Why the self-assessment sheet is closed, or None while it is open.

    Returns
    -------
    tuple or None
        ``("status", status)`` once submitted (or later), ``("deadline",
        iso timestamp)`` after the self-scoring deadline.
    """
    if assessment.get("status") != "draft":
        return ("status", str(assessment.get("status")))
    deadline = assessment.get("deadline")
    if deadline is not None and not (isinstance(deadline, float) and math.isnan(deadline)) and not pd.isna(deadline):
        when = pd.Timestamp(deadline)
        if when.tzinfo is None:
            when = when.tz_localize("UTC")
        now_ts = pd.Timestamp(now or dt.datetime.now(dt.timezone.utc))
        if now_ts.tzinfo is None:
            now_ts = now_ts.tz_localize("UTC")
        if now_ts > when:
            return ("deadline", when.isoformat())
    return None


def require_open_sheet(assessment: Mapping[str, Any], now: dt.datetime | None = None) -> None:
    """Refuse a self-score write on a submitted sheet or after the deadline."""
    reason = lock_reason(assessment, now)
    if reason is None:
        return
    kind, value = reason
    where = f"unit {assessment.get('unit_code')}, {assessment.get('year')}"
    if kind == "status":
        raise AccessDenied(f"the self-assessment of {where} is {value}: self scores can no longer change")
    raise AccessDenied(f"the self-assessment deadline of {where} passed ({value}): the sheet is locked")


def missing_explanations(rows: Iterable[Mapping[str, Any]], framework: Any = None) -> list[dict[str, Any]]:
    """Failure rows for leaves scored without evidence and without an explanation (the library's rule).

    Parameters
    ----------
    rows
        Mappings with ``node_code``, ``self_score``, ``evidence`` (link
        text), ``files`` (number of evidence files or links) and
        ``explanation``.
    framework
        The sheet's framework: only leaves it marks ``evidence_required``
        need evidence. Without it, a row's own ``evidence_required``
        (default True).
    """
    from parindex_lib.store import EXPLANATION_RULE, needs_explanation

    required: dict[str, bool] = {}
    if framework is not None:
        leaves = framework.leaves
        required = dict(zip(leaves["code"].astype(str), leaves["evidence_required"].astype(bool)))
    out = []
    for r in rows:
        code = str(r["node_code"])
        flag = required.get(code, bool(r.get("evidence_required", True)))
        if needs_explanation(r, evidence_required=flag, evidence_items=int(r.get("files") or 0)):
            out.append({"row": None, "column": f"{code}: explanation", "value": None,
                        "expected": f"{EXPLANATION_RULE} (file or link)"})
    return out


def missing_reasons(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Failure rows for appraised scores that differ from the self score without a reason (the library's rule).

    Parameters
    ----------
    rows
        Mappings with ``node_code``, ``self_score`` and ``appraised_score``
        (floats, NaN = none) and ``appraisal_reason``.
    """
    from parindex_lib.store import REASON_RULE, needs_reason

    return [{"row": None, "column": f"{r['node_code']}: appraisal_reason", "value": r.get("appraised_score"),
             "expected": REASON_RULE} for r in rows if needs_reason(r)]


def require_appraisable(assessment: Mapping[str, Any]) -> None:
    """Refuse appraisal writes unless the sheet was submitted and is not yet approved."""
    status = assessment.get("status")
    if status != "submitted":
        where = f"unit {assessment.get('unit_code')}, {assessment.get('year')}"
        raise AccessDenied(f"the assessment of {where} is {status}: appraisal is possible only once it is "
                           "submitted and until it is approved")
