"""parindex: the open workbench for Vietnam's Administrative Reform Index.

The curated public API. Modules are nouns; functions are verbs.

>>> import parindex_lib as pi
>>> fw = pi.load_framework("demo_department_2024")
>>> fw.counts()["subcriterion"]
88
"""

from .errors import (
    AccessDenied,
    ConflictError,
    FileRefused,
    FrameworkError,
    FrameworkIncompleteError,
    NotFound,
    ParindexError,
    ValidationError,
)
from .exporting import write_scores_file, write_table
from .framework import Framework, framework_to_yaml, load_framework, read_framework_yaml, shipped_frameworks
from .framework_sheet import read_framework_sheet, write_framework_sheet
from .importing import LONG_COLUMNS, read_scores, read_table, score_template
from .numbers import format_number, parse_number
from .safety import check_file, escape_formula
from .store import Store, TenantSession
from .results import results_table, session_results
from .aggregation import roll_up
from .ranking import add_group, add_rank_change, deductions, rank
from .provinces import combine_to_new, crosswalk_2025, match_provinces, province_code
from .external import external_catalogue, load_external, load_shipped, read_external_file
from .correlation import correlate, lagged_correlate, partial_correlate
from .regression import panel_ols
from .sensitivity import rank_sensitivity
from .planning import PRIORITY_FORMULA, points_lost, priority, target
from .reporting import evidence_pack_html, evidence_pack_pdf, evidence_pack_xlsx

__version__ = "0.1.0"

__all__ = [
    "AccessDenied", "ConflictError", "FileRefused", "FrameworkError", "FrameworkIncompleteError", "NotFound",
    "ParindexError", "ValidationError",
    "Framework", "load_framework", "read_framework_yaml", "framework_to_yaml", "shipped_frameworks",
    "read_framework_sheet", "write_framework_sheet",
    "LONG_COLUMNS", "read_scores", "read_table", "score_template", "write_scores_file", "write_table",
    "check_file", "escape_formula", "format_number", "parse_number",
    "Store", "TenantSession",
    "roll_up", "rank", "add_rank_change", "add_group", "deductions", "results_table", "session_results",
    "province_code", "match_provinces", "crosswalk_2025", "combine_to_new",
    "load_shipped", "load_external", "read_external_file", "external_catalogue",
    "correlate", "lagged_correlate", "partial_correlate", "panel_ols", "rank_sensitivity",
    "points_lost", "priority", "target", "PRIORITY_FORMULA",
    "evidence_pack_html", "evidence_pack_xlsx", "evidence_pack_pdf",
]
