"""The entry point of ``missive-dirwatch``: registers the ``dirwatch`` adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from missive import Adapter, hookimpl
from missive_dirwatch.adapter import DirectoryAdapter


@hookimpl
def missive_adapters() -> Mapping[str, type[Adapter[Any]]]:
    return {"dirwatch": DirectoryAdapter}
