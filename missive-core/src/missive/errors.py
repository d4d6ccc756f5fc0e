"""Exceptions raised by Missive.

Every exception derives from :class:`MissiveError` and also from the builtin
exception a caller would naturally catch (``ValueError``, ``RuntimeError``,
``LookupError``, ``ImportError``), so code written against the builtins keeps
working.
"""

from __future__ import annotations


class MissiveError(Exception):
    """Base class of every exception Missive raises on purpose."""


class HandlerAlreadyRegistered(MissiveError, ValueError):
    """A handler was registered for a matcher that already has one."""


class RoutingError(MissiveError, RuntimeError):
    """A message could not be routed to exactly one handler.

    Raised by processing only when no dead letter queue is set; with a DLQ the
    message is stored under :attr:`reason` and acked instead.
    """

    reason = "routing failed"

    def __init__(self, message_id: bytes, detail: str = "") -> None:
        text = f"{self.reason} for message {message_id!r}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.message_id = message_id


class NoMatchingHandler(RoutingError):
    """No matcher accepted the message."""

    reason = "no matching handlers"


class MultipleMatchingHandlers(RoutingError):
    """More than one matcher accepted the message."""

    reason = "multiple matching handlers"


class MatcherError(RoutingError):
    """A matcher raised while deciding whether it accepts a message."""

    def __init__(self, message_id: bytes, matcher: object, error: Exception) -> None:
        self.reason = f"matcher {matcher!r} raised {type(error).__name__}: {error}"
        super().__init__(message_id)


class MessageDecodeError(MissiveError, ValueError):
    """A message's payload cannot be decoded by its message format.

    Processing treats it as a problem with that one message: with a DLQ the
    message is dead-lettered with a reason that starts with
    ``"could not decode message"``.
    """


class MessageAlreadySettled(MissiveError, RuntimeError):
    """A handler acked or nacked a message that was already acked or nacked."""


class DeadLetterError(MissiveError, RuntimeError):
    """Storing a message in the dead letter queue failed.

    The message is neither acked nor nacked, so the transport keeps it: nothing
    is lost, and the adapter decides whether to retry or stop.
    """


class PluginError(MissiveError):
    """Base class of errors about installed plugins."""


class PluginNotFound(PluginError, LookupError):
    """No installed distribution provides the requested plugin name."""


class PluginLoadError(PluginError, ImportError):
    """An installed plugin failed to import or to register its hooks."""


class DuplicatePlugin(PluginError):
    """Two installed distributions claim the same plugin name."""
