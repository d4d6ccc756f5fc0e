"""The ``wsgi`` adapter plugin.

``missive.adapters.load("wsgi")`` and ``from missive.adapters.wsgi import
WSGIAdapter`` (the 0.8.1 import path) both come here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from missive.plugins import hookimpl
from missive_wsgi.adapter import WSGIAdapter

__all__ = ["WSGIAdapter", "missive_adapters"]


@hookimpl
def missive_adapters() -> Mapping[str, type[Any]]:
    return {"wsgi": WSGIAdapter}
