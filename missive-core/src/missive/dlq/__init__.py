"""Dead letter queues: where messages that cannot be processed are kept.

Any ``MutableMapping[bytes, tuple[Message, str]]`` is a DLQ: the key is the
message id, the value the message and the reason it could not be processed.
A plain ``dict`` works; :class:`missive.dlq.memory.MemoryDLQ` adds
:meth:`~missive.dlq.memory.MemoryDLQ.oldest`; durable backends are plugins
(entry-point group ``missive.dlq``), such as ``sqlite`` from
``missive-sqlite-dlq``, importable as ``missive.dlq.sqlite`` once installed.
"""

from __future__ import annotations

from missive import _plugin_modules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_plugin_modules.install(__name__, "missive.dlq")


def load(name: str) -> type[Any]:
    """Return the DLQ class registered under ``name`` (``"memory"``, ...).

    :raises PluginNotFound: no installed distribution provides ``name``.
    :raises PluginLoadError: the plugin providing ``name`` failed to import.
    """
    from missive import plugins

    found: type[Any] = plugins.load(plugins.DLQ, name)
    return found


def names() -> list[str]:
    """Return the names of every installed DLQ backend, sorted."""
    from missive import plugins

    return plugins.names(plugins.DLQ)
