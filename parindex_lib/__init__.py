"""parindex: the open workbench for Vietnam's Administrative Reform Index.

The curated public API. Modules are nouns; functions are verbs. Names are
imported on first use (PEP 562), so an app kernel that needs the store does
not pay for statsmodels or matplotlib.

>>> import parindex_lib as pi
>>> fw = pi.load_framework("demo_department_2024")
>>> fw.counts()["subcriterion"]
88
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # errors
    **{name: "errors" for name in (
        "ParindexError", "ValidationError", "FrameworkError", "FrameworkIncompleteError", "FileRefused",
        "ConflictError", "AccessDenied", "NotFound")},
    # frameworks
    **{name: "framework" for name in (
        "Framework", "load_framework", "read_framework_yaml", "framework_from_nodes", "framework_to_yaml",
        "shipped_frameworks")},
    "read_framework_sheet": "framework_sheet", "write_framework_sheet": "framework_sheet",
    # numbers, files
    "parse_number": "numbers", "format_number": "numbers",
    "check_file": "safety", "escape_formula": "safety",
    "LONG_COLUMNS": "importing", "read_scores": "importing", "read_table": "importing",
    "score_template": "importing",
    "write_scores_file": "exporting", "write_table": "exporting", "write_appraisal_sheet": "exporting",
    # store
    "Store": "store", "TenantSession": "store",
    # results
    "roll_up": "aggregation",
    **{name: "ranking" for name in ("rank", "add_rank_change", "add_group", "deductions")},
    "results_table": "results", "session_results": "results", "ResultsCache": "results",
    # reference data and studies
    **{name: "provinces" for name in ("province_code", "match_provinces", "crosswalk_2025", "combine_to_new")},
    **{name: "external" for name in ("load_shipped", "load_external", "read_external_file", "external_catalogue")},
    **{name: "correlation" for name in ("correlate", "lagged_correlate", "partial_correlate")},
    "panel_ols": "regression", "rank_sensitivity": "sensitivity",
    **{name: "planning" for name in ("points_lost", "priority", "target", "PRIORITY_FORMULA")},
    **{name: "reporting" for name in ("evidence_pack_html", "evidence_pack_xlsx", "evidence_pack_pdf")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'parindex_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
