"""Who may change what: the rules of the five roles of a tenant.

A member of a tenant holds one role:

========== =====================================================================
role       may change
========== =====================================================================
admin      everything in the tenant (units, frameworks, members, assessments,
           every score field, evidence, deadlines, any status change), except
           that a published assessment must be reopened first
appraiser  the appraisal fields (``appraised_score``, ``appraisal_reason``,
           ``appraisal_round``, ``bonus``, ``penalty``, ``survey_points``) of
           a *submitted* assessment, and approve it (submitted -> appraised)
editor     for *their units only*: the self-assessment fields
           (``self_score``, ``explanation``, ``evidence``) and evidence files
           while the assessment is a draft and its deadline has not passed;
           the unit's response to the appraisal (``unit_response``) while it
           is submitted; submit it (draft -> submitted)
analyst    nothing (reads everything in the tenant)
researcher nothing (reads everything in the tenant; runs studies in
           JupyterLab)
========== =====================================================================

Every member reads the whole tenant. These functions decide; the store calls
them inside the transaction that writes (:mod:`parindex_lib.store`), and on
PostgreSQL the same rules are checked again by triggers in the database
(revision 0002), so a caller that bypasses the library is refused too.

Examples
--------
>>> draft = {"unit_code": "X001", "year": 2024, "status": "draft", "deadline": None}
>>> score_write_problems("editor", ["X001"], draft, ["self_score"])
[]
>>> score_write_problems("editor", ["X002"], draft, ["self_score"])
['self_score: unit X001 is not one of your units (X002)']
>>> score_write_problems("appraiser", None, draft, ["appraised_score"])[0]
'appraised_score: appraisal fields change only while the assessment is submitted (unit X001, 2024 is draft)'
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import AccessDenied
from .models import ROLES

__all__ = [
    "ROLES",
    "SELF_FIELDS",
    "RESPONSE_FIELDS",
    "APPRAISAL_FIELDS",
    "SCORE_FIELDS_BY_ROLE",
    "LAB_ROLES",
    "READ_ONLY_ROLES",
    "STATUS_CHANGES",
    "may_edit_unit",
    "editable_unit_codes",
    "score_write_problems",
    "require_score_write",
    "require_evidence_change",
    "require_status_change",
    "require_admin",
    "require_writer",
]

#: Fields an editor fills in on a draft sheet of one of their units.
SELF_FIELDS = ("self_score", "explanation", "evidence")
#: The unit's answer to an appraisal, written by an editor while the sheet is submitted.
RESPONSE_FIELDS = ("unit_response",)
#: Fields an appraiser fills in while the sheet is submitted.
APPRAISAL_FIELDS = ("appraised_score", "appraisal_reason", "appraisal_round", "bonus", "penalty", "survey_points")
#: Score fields each role may write at all (admins: every field).
SCORE_FIELDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "admin": SELF_FIELDS + RESPONSE_FIELDS + APPRAISAL_FIELDS,
    "appraiser": APPRAISAL_FIELDS,
    "editor": SELF_FIELDS + RESPONSE_FIELDS,
    "analyst": (),
    "researcher": (),
}
#: Roles that get JupyterLab (and run code) in a JupyterHub deployment; the others get only the Voilà apps.
LAB_ROLES = ("analyst", "researcher")
#: Roles that change nothing.
READ_ONLY_ROLES = ("analyst", "researcher")
#: Status changes each non-admin role may make: (from, to). Admins make every change the workflow allows.
STATUS_CHANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "editor": (("draft", "submitted"),),
    "appraiser": (("submitted", "appraised"),),
    "analyst": (),
    "researcher": (),
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _deadline_passed(deadline: Any, now: dt.datetime | None) -> bool:
    if deadline is None or (isinstance(deadline, float) and math.isnan(deadline)):
        return False
    if not isinstance(deadline, dt.datetime):
        try:  # a pandas Timestamp, or text
            deadline = deadline.to_pydatetime() if hasattr(deadline, "to_pydatetime") else \
                dt.datetime.fromisoformat(str(deadline))
        except (TypeError, ValueError):
            return False
        if deadline is None or deadline != deadline:  # NaT
            return False
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=dt.timezone.utc)
    return (now or _now()) > deadline


def _where(assessment: Mapping[str, Any]) -> str:
    return f"unit {assessment.get('unit_code')}, {assessment.get('year')}"


def may_edit_unit(role: str, unit_codes: Iterable[str] | None, unit_code: str) -> bool:
    """Whether ``role`` may self-assess ``unit_code``: admins any unit, editors their own."""
    if role == "admin":
        return True
    return role == "editor" and unit_codes is not None and str(unit_code) in {str(c) for c in unit_codes}


def editable_unit_codes(role: str, unit_codes: Iterable[str] | None, all_codes: Iterable[str]) -> list[str]:
    """The units a member may self-assess, in the order of ``all_codes``."""
    return [c for c in all_codes if may_edit_unit(role, unit_codes, c)]


def score_write_problems(role: str, unit_codes: Iterable[str] | None, assessment: Mapping[str, Any],
                         fields: Iterable[str], now: dt.datetime | None = None) -> list[str]:
    """Why the member may not change ``fields`` of a score of ``assessment`` (empty: allowed).

    Parameters
    ----------
    role, unit_codes
        The member's role and, for an editor, their units.
    assessment
        Mapping with ``unit_code``, ``year``, ``status`` and ``deadline``.
    fields
        The score fields whose values change.
    now
        The time to compare the deadline with (default: now).

    Returns
    -------
    list of str
        One sentence per refused field, naming the field and the rule.
    """
    fields = list(dict.fromkeys(fields))
    if not fields or role == "admin":
        return []
    status = assessment.get("status")
    unit = assessment.get("unit_code")
    where = _where(assessment)
    out: list[str] = []
    for f in fields:
        if f not in SCORE_FIELDS_BY_ROLE.get(role, ()):
            out.append(f"{f}: a{'n' if role[:1] in 'aeiou' else ''} {role or 'non-member'} may not change it")
            continue
        if role == "editor":
            if not may_edit_unit(role, unit_codes, unit):
                mine = ", ".join(sorted(unit_codes or [])) or "none"
                out.append(f"{f}: unit {unit} is not one of your units ({mine})")
            elif f in SELF_FIELDS and status != "draft":
                out.append(f"{f}: self-assessment fields change only while the assessment is a draft ({where} is {status})")
            elif f in SELF_FIELDS and _deadline_passed(assessment.get("deadline"), now):
                out.append(f"{f}: the self-assessment deadline of {where} has passed ({assessment.get('deadline')})")
            elif f in RESPONSE_FIELDS and status != "submitted":
                out.append(f"{f}: the unit's response is written while the assessment is submitted ({where} is {status})")
        elif role == "appraiser" and status != "submitted":
            out.append(f"{f}: appraisal fields change only while the assessment is submitted ({where} is {status})")
    return out


def require_score_write(role: str, unit_codes: Iterable[str] | None, assessment: Mapping[str, Any],
                        fields: Iterable[str], *, user: str = "", now: dt.datetime | None = None) -> None:
    """Raise :class:`AccessDenied` when :func:`score_write_problems` finds any."""
    problems = score_write_problems(role, unit_codes, assessment, fields, now)
    if problems:
        who = f"{user!r} ({role or 'no member'})" if user else (role or "no member")
        raise AccessDenied(f"{who} may not change the score of {_where(assessment)}: " + "; ".join(problems))


def require_evidence_change(role: str, unit_codes: Iterable[str] | None, assessment: Mapping[str, Any], *,
                            user: str = "", now: dt.datetime | None = None) -> None:
    """Evidence files and links are attached or removed as the self-assessment fields are.

    Raises
    ------
    AccessDenied
        For an analyst, researcher or appraiser; for an editor on another
        unit, on a sheet that is no longer a draft or after the deadline.
    """
    problems = score_write_problems(role, unit_codes, assessment, ["evidence"], now)
    if problems:
        who = f"{user!r} ({role or 'no member'})" if user else (role or "no member")
        raise AccessDenied(f"{who} may not change the evidence of {_where(assessment)}: "
                           + problems[0].removeprefix("evidence: "))


def require_status_change(role: str, unit_codes: Iterable[str] | None, assessment: Mapping[str, Any],
                          new_status: str, *, user: str = "", now: dt.datetime | None = None) -> None:
    """Refuse a status change the member's role does not make.

    Admins make every change; editors submit drafts of their units before
    the deadline; appraisers approve submitted assessments (submitted ->
    appraised).

    Raises
    ------
    AccessDenied
    """
    if role == "admin":
        return
    old = assessment.get("status")
    who = f"{user!r} ({role or 'no member'})" if user else (role or "no member")
    allowed = STATUS_CHANGES.get(role, ())
    if (old, new_status) not in allowed:
        can = ", ".join(f"{a} -> {b}" for a, b in allowed) or "none"
        raise AccessDenied(f"{who} may not move the assessment of {_where(assessment)} from {old} to {new_status} "
                           f"(a{'n' if role[:1] in 'aeiou' else ''} {role} may make: {can}; an admin makes the others)")
    if role == "editor" and not may_edit_unit(role, unit_codes, assessment.get("unit_code")):
        mine = ", ".join(sorted(unit_codes or [])) or "none"
        raise AccessDenied(f"{who} may not submit the assessment of {_where(assessment)}: "
                           f"unit {assessment.get('unit_code')} is not one of your units ({mine})")
    if role == "editor" and _deadline_passed(assessment.get("deadline"), now):
        raise AccessDenied(f"{who} may not submit the assessment of {_where(assessment)}: its deadline has passed "
                           f"({assessment.get('deadline')}); an admin can submit it or move the deadline")


def require_admin(role: str, what: str, *, tenant: str = "", user: str = "") -> None:
    """Refuse ``what`` unless the member is an admin of the tenant.

    Raises
    ------
    AccessDenied
        Naming the user, their role and what only an admin may do.
    """
    if role != "admin":
        where = f" of tenant {tenant!r}" if tenant else ""
        who = f" ({user!r} is {role or 'no member'})" if user else ""
        raise AccessDenied(f"only an admin{where} can {what}{who}")


def require_writer(role: str, *, tenant: str = "", user: str = "") -> None:
    """Refuse any score write by a read-only role (analyst, researcher).

    Raises
    ------
    AccessDenied
    """
    if role not in SCORE_FIELDS_BY_ROLE or not SCORE_FIELDS_BY_ROLE[role]:
        where = f" in tenant {tenant!r}" if tenant else ""
        raise AccessDenied(f"{user!r} is {'a' if role else 'not a member'}{' ' + role if role else ''}{where}: "
                           "read-only members change no scores")
