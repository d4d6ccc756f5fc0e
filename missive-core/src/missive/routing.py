"""Routing: choosing the one handler for a message.

A route pairs a matcher (any callable ``message -> bool``) with a handler.  A
message must be accepted by exactly one matcher; none or several is an error
that processing turns into a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from missive.errors import (
    MatcherError,
    MessageDecodeError,
    MultipleMatchingHandlers,
    NoMatchingHandler,
    RoutingError,
)

if TYPE_CHECKING:
    from missive.contexts import HandlingContext
    from missive.messages import Message

M = TypeVar("M", bound="Message")

Matcher = Callable[[M], Any]
Handler = Callable[[M, "HandlingContext[M]"], None]


class Router(Generic[M]):
    """An immutable table of routes that selects the handler for a message.

    Every matcher is evaluated for every message, so that a message accepted
    by two matchers is reported rather than silently given to the first.
    """

    __slots__ = ("_routes",)

    def __init__(self, routes: Iterable[tuple[Matcher[M], Handler[M]]] = ()) -> None:
        self._routes = tuple(routes)

    def __len__(self) -> int:
        return len(self._routes)

    def select(self, message: M) -> Handler[M]:
        """Return the handler whose matcher accepts ``message``.

        :raises NoMatchingHandler: no matcher accepted it.
        :raises MultipleMatchingHandlers: more than one matcher accepted it.
        :raises MessageDecodeError: a matcher could not decode the payload.
        :raises MatcherError: a matcher raised any other exception.
        """
        found: Handler[M] | None = None
        try:
            for matcher, handler in self._routes:
                if matcher(message):
                    if found is not None:
                        raise MultipleMatchingHandlers(
                            message.message_id,
                            f"at least {_name(found)} and {_name(handler)}",
                        )
                    found = handler
        except (RoutingError, MessageDecodeError):
            raise
        except Exception as exc:
            raise MatcherError(message.message_id, matcher, exc) from exc
        if found is None:
            raise NoMatchingHandler(message.message_id)
        return found


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
