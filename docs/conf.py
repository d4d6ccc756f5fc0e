"""Sphinx configuration of Missive's documentation.

Build with warnings as errors, as CI does::

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

The Missive distributions must be installed (autodoc imports them, and the
CLI reference runs the real ``missive`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "Missive"
author = "the Missive authors"
copyright = "the Missive authors"
release = (HERE.parent / "VERSION").read_text().strip()
version = release

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "missive_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "requirements.txt"]
root_doc = "index"

# The Markdown pages are standalone reports: their headings need no anchors.
myst_heading_anchors = 0

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
}

# No network when building, so no intersphinx: references into the standard
# library, typing, pluggy and pytest cannot resolve, and neither can the type
# variables of generic classes.  Everything of Missive's own must.
nitpick_ignore_regex = [
    (
        r"py:(class|obj|data|exc|func)",
        r"(collections|typing|types|abc|argparse|datetime|pathlib|os|contextlib|threading|sqlite3|enum|wsgiref|_typeshed)\..*",
    ),
    (r"py:(class|obj|data)", r"(pluggy|pytest|_pytest)(\..*)?"),
    (
        r"py:(class|obj|data)",
        r"(.*\.)?(M|H|Self|Any|IO|Literal|Matcher|Handler|Decision|DLQ|ProcessingHook|HandlingHook|TransportOutcome)",
    ),
    (
        r"py:(class|obj|exc)",
        r"(int|str|bytes|bool|float|object|type|tuple|dict|list|set|Exception|BaseException|ValueError|RuntimeError|LookupError|ImportError|KeyError|TypeError|ModuleNotFoundError|NotImplementedError|OSError|KeyboardInterrupt)",
    ),
    (
        r"py:(class|obj)",
        r"(Callable|Iterator|Iterable|Mapping|MutableMapping|Sequence|Hashable|AbstractContextManager|ModuleType|FrameType|Path|PathLike|datetime|Connection|WSGIApplication|WSGIEnvironment|StartResponse|Outcome|Adapter|Message|Processor|ProcessingContext|PluginRegistry|RawMessage)",
    ),
]

# Instance attributes that docstrings refer to but autodoc cannot list (they
# are set in __init__ without a doc comment).
nitpick_ignore = [
    ("py:attr", "path"),
    ("py:attr", "healthz_path"),
]

html_theme = "alabaster"
html_title = f"Missive {release}"
