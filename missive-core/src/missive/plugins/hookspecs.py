"""The hook specifications: everything a plugin can contribute to Missive.

A plugin is a module (or any object) whose functions are marked with
:data:`missive.plugins.hookimpl` and named after one of the hooks below.  A
distribution publishes it through an entry point whose name is the word users
type and whose value is that module, in the group for its kind::

    [project.entry-points."missive.adapters"]
    redis = "missive_redis.plugin"

Groups: ``missive.adapters``, ``missive.messages`` and ``missive.dlq`` for
the three kinds of component, ``missive.commands`` for CLI subcommands (the
entry-point name is the subcommand) and ``missive.observers`` for plugins that
watch message outcomes, loaded whenever a processor starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from missive.plugins import PROJECT_NAME

if TYPE_CHECKING:
    from missive.adapters import Adapter
    from missive.contexts import Outcome, ProcessingContext
    from missive.messages import Message

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def missive_adapters() -> Mapping[str, type[Adapter[Any]]]:
    """Return the adapter classes this plugin provides, keyed by name.

    Called when a user loads an adapter by name (``missive.adapters.load``,
    ``missive run --adapter``), after the plugin's entry point was imported.
    Each name should also be an entry-point name of the plugin in the
    ``missive.adapters`` group, so that it can be found without importing
    anything.  Two plugins returning the same name is an error.
    """
    raise NotImplementedError


@hookspec
def missive_message_formats() -> Mapping[str, type[Message]]:
    """Return the message classes this plugin provides, keyed by name.

    Called when a message format is loaded by name (``missive.messages.load``,
    ``missive run --message``, a DLQ rebuilding a stored message).  A class's
    ``format_name`` should equal its key, so that a stored message can be
    rebuilt through the same name.
    """
    raise NotImplementedError


@hookspec
def missive_dlq_backends() -> Mapping[str, type[Any]]:
    """Return the dead letter queue classes this plugin provides, keyed by name.

    Called when a DLQ backend is loaded by name (``missive.dlq.load``).  A
    backend is a ``MutableMapping[bytes, tuple[Message, str]]``; it may also
    offer ``add_dead_letter(message, reason, details)`` to receive the failure
    details (``error_type``, ``traceback``, ``adapter``), and ``oldest()``.
    Stored messages are read back through ``missive.messages.load(
    message.format_name).rebuild(raw_data, message_id, attributes=...)``, never
    by unpickling.
    """
    raise NotImplementedError


@hookspec
def missive_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add subcommands to the ``missive`` command line.

    Called for a plugin in the ``missive.commands`` group when the user runs
    the subcommand named by its entry point.  Each parser added must set a
    default ``handler``: a callable taking the parsed arguments and returning
    the exit code.  Raise ``missive.cli.CommandError`` for a one-line error.
    """


@hookspec
def missive_message_outcome(
    processing_ctx: ProcessingContext[Any],
    message: Message,
    outcome: Outcome,
    reason: str | None,
) -> None:
    """Observe what became of a message: acked, nacked, dead-lettered, failed.

    Called once for every message a processing context handles, after the
    adapter was told to ack or nack it (or, for ``Outcome.FAILED``, before the
    exception propagates).  ``reason`` is the dead letter reason, ``None`` for
    acked and nacked messages.  When no plugin implements this hook it costs
    nothing per message.  An exception raised here is logged and does not change
    the message's outcome.
    """
