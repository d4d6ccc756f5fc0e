"""Core's own components, registered through the same hooks as any plugin.

Core's distribution points its entry points (``stdin``, ``raw``, ``json``,
``dict``, ``memory``) at this module.
"""

from __future__ import annotations

from missive.plugins import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


@hookimpl
def missive_adapters() -> Mapping[str, type[Any]]:
    from missive.adapters.stdin import StdinAdapter

    return {"stdin": StdinAdapter}


@hookimpl
def missive_message_formats() -> Mapping[str, type[Any]]:
    from missive.messages import DictMessage, JSONMessage, RawMessage

    return {"raw": RawMessage, "json": JSONMessage, "dict": DictMessage}


@hookimpl
def missive_dlq_backends() -> Mapping[str, type[Any]]:
    from missive.dlq.memory import MemoryDLQ

    return {"memory": MemoryDLQ}
