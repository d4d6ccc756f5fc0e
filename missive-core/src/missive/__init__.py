"""Missive: a framework for writing message processors.

A :class:`Processor` routes each message to exactly one handler, chosen by
matchers.  Adapters connect it to a transport; messages that cannot be
processed go to a dead letter queue.  Transports, message formats and DLQ
backends are plugins (see :mod:`missive.plugins`).

Importing this package scans no entry points and imports no plugin.
"""

from __future__ import annotations

from missive.adapters import Adapter, RunnableAdapter
from missive.contexts import HandlingContext, Outcome, ProcessingContext
from missive.errors import (
    DeadLetterError,
    DuplicatePlugin,
    HandlerAlreadyRegistered,
    MatcherError,
    MessageAlreadySettled,
    MessageDecodeError,
    MissiveError,
    MultipleMatchingHandlers,
    NoMatchingHandler,
    PluginError,
    PluginLoadError,
    PluginNotFound,
    RoutingError,
)
from missive.messages import DictMessage, JSONMessage, Message, RawMessage
from missive.processor import Processor
from missive.state import State
from missive.testclient import TestAdapter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from missive.plugins import hookimpl

__all__ = [
    "Adapter",
    "DeadLetterError",
    "DictMessage",
    "DuplicatePlugin",
    "HandlerAlreadyRegistered",
    "HandlingContext",
    "JSONMessage",
    "MatcherError",
    "Message",
    "MessageAlreadySettled",
    "MessageDecodeError",
    "MissiveError",
    "MultipleMatchingHandlers",
    "NoMatchingHandler",
    "Outcome",
    "PluginError",
    "PluginLoadError",
    "PluginNotFound",
    "ProcessingContext",
    "Processor",
    "RawMessage",
    "RoutingError",
    "RunnableAdapter",
    "State",
    "TestAdapter",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    # Resolved on first use so that `import missive` stays cheap.
    if name == "__version__":
        from importlib.metadata import version

        return version("missive-core")
    if name == "hookimpl":
        from missive.plugins import hookimpl

        return hookimpl
    raise AttributeError(f"module 'missive' has no attribute {name!r}")
