"""parindex: the open workbench for Vietnam's Administrative Reform Index.

The curated public API. Modules are nouns; functions are verbs.
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
from .framework import Framework, framework_to_yaml, load_framework, read_framework_yaml, shipped_frameworks
from .numbers import format_number, parse_number

__version__ = "0.1.0"
