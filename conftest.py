"""Root pytest configuration.

Doctests run over every module (``--doctest-modules``); the conftest files
of the test folders hold no doctests and share one basename, so they are not
collected as modules (they are still loaded as conftest files).
"""

collect_ignore_glob = ["tests/conftest.py", "tests/*/conftest.py", "bench/*", "deploy/*", "notebooks/*"]
