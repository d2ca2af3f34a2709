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

__version__ = "0.1.0"

__all__ = [
    "AccessDenied", "ConflictError", "FileRefused", "FrameworkError", "FrameworkIncompleteError", "NotFound",
    "ParindexError", "ValidationError",
    "Framework", "load_framework", "read_framework_yaml", "framework_to_yaml", "shipped_frameworks",
    "read_framework_sheet", "write_framework_sheet",
    "LONG_COLUMNS", "read_scores", "read_table", "score_template", "write_scores_file", "write_table",
    "check_file", "escape_formula", "format_number", "parse_number",
    "Store", "TenantSession",
]
