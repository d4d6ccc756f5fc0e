"""The 0.8.1 module path of Missive's core classes, kept for existing imports.

New code imports from :mod:`missive` directly.
"""

from __future__ import annotations

from missive.adapters import Adapter
from missive.contexts import HandlingContext, ProcessingContext
from missive.messages import JSONMessage, Message, RawMessage
from missive.processor import Processor
from missive.testclient import TestAdapter

__all__ = [
    "Adapter",
    "HandlingContext",
    "JSONMessage",
    "Message",
    "ProcessingContext",
    "Processor",
    "RawMessage",
    "TestAdapter",
]
