"""The exception family of parindex.

Every error the library raises on purpose derives from :class:`ParindexError`.
Errors about input carry a *failure table* (:attr:`ValidationError.failures`)
that names every offender at once, so a command line or an app can show it
as is.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd

__all__ = [
    "FAILURE_COLUMNS",
    "ParindexError",
    "ValidationError",
    "FrameworkError",
    "FrameworkIncompleteError",
    "FileRefused",
    "ConflictError",
    "AccessDenied",
    "NotFound",
    "failure_table",
]

#: Columns of every failure table, in order.
FAILURE_COLUMNS = ["file", "sheet", "row", "column", "value", "expected"]

_SHOWN = 50


class ParindexError(Exception):
    """Base class of every error raised on purpose by parindex."""


def failure_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build a failure table from dicts.

    Parameters
    ----------
    rows
        Mappings with any of the keys of :data:`FAILURE_COLUMNS`; missing
        keys become None.

    Returns
    -------
    pandas.DataFrame
        Columns ``file``, ``sheet``, ``row``, ``column``, ``value``,
        ``expected`` (all object dtype).
    """
    records = [{c: r.get(c) for c in FAILURE_COLUMNS} for r in rows]
    return pd.DataFrame(records, columns=FAILURE_COLUMNS, dtype=object)


class ValidationError(ParindexError):
    """Input that does not meet its contract; every problem is listed.

    Parameters
    ----------
    message
        One sentence saying what was being checked.
    failures
        The failure table (see :func:`failure_table`), or rows for it.
    """

    def __init__(self, message: str, failures: pd.DataFrame | Iterable[Mapping[str, Any]]):
        if not isinstance(failures, pd.DataFrame):
            failures = failure_table(failures)
        self.message = message
        self.failures = failures.reset_index(drop=True)
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.failures)
        lines = [f"{self.message} ({n} problem{'s' if n != 1 else ''})"]
        for rec in self.failures.head(_SHOWN).itertuples(index=False):
            where = []
            if rec.file:
                where.append(f"file {rec.file}")
            if rec.sheet:
                where.append(f"sheet {rec.sheet}")
            if rec.row is not None and not (isinstance(rec.row, float) and pd.isna(rec.row)):
                where.append(f"row {rec.row}")
            if rec.column:
                where.append(f"column {rec.column}")
            value = "" if rec.value is None else f" value {rec.value!r}:"
            lines.append(f"  - {', '.join(where) or 'input'}:{value} expected {rec.expected}")
        if n > _SHOWN:
            lines.append(f"  ... and {n - _SHOWN} more")
        return "\n".join(lines)


class FrameworkError(ValidationError):
    """A framework file that breaks the format's rules."""


class FileRefused(ValidationError):
    """A file refused before reading: too large, wrong type, a zip or XML bomb."""


class FrameworkIncompleteError(ParindexError):
    """A framework that can be browsed but not scored.

    Attributes
    ----------
    framework_id : str
    codes : list of str
        The nodes whose points or children are unknown.
    """

    def __init__(self, framework_id: str, codes: list[str], why: str):
        self.framework_id = framework_id
        self.codes = list(codes)
        shown = ", ".join(self.codes[:30]) + (" ..." if len(self.codes) > 30 else "")
        super().__init__(
            f"framework {framework_id} cannot score: {why}: {shown}. "
            "Import the complete scoring sheet of the decision (parindex framework import)."
        )


class ConflictError(ParindexError):
    """Someone else changed the row since it was read.

    Attributes
    ----------
    what : str
        The row, e.g. ``"unit D01, 2024, node 1.2.3"``.
    field : str
    yours, theirs
        The value this writer wanted and the value now stored.
    current_version : int
        Pass it as ``expected_version`` to overwrite deliberately.
    changed_by : str
    """

    def __init__(self, what: str, field: str, yours: Any, theirs: Any, current_version: int, changed_by: str | None):
        self.what, self.field, self.yours, self.theirs = what, field, yours, theirs
        self.current_version = current_version
        self.changed_by = changed_by
        super().__init__(
            f"conflict on {what}, {field}: you wrote {yours!r} but {changed_by or 'another user'} "
            f"saved {theirs!r} first (version {current_version}); choose one and save again"
        )


class AccessDenied(ParindexError):
    """The session's tenant or role does not allow this."""


class NotFound(ParindexError):
    """A tenant, unit, framework, assessment or node that does not exist (in this tenant)."""
