"""The ``redis`` adapter: Redis Pub/Sub, at-most-once.

Pub/Sub delivers a message to whoever is subscribed at the moment it is
published, and to no one else: a message published while the adapter is
disconnected, or one whose handler fails, is gone.  Use the ``redis-streams``
adapter (:mod:`missive_redis.streams`) when messages must be acknowledged.
"""

from __future__ import annotations

import datetime
import logging
import time
import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from missive.adapters import RunnableAdapter
from missive.messages import Message
from missive_redis._connection import (
    CONNECTION_ERRORS,
    Backoff,
    connection_kwargs,
    parse_float,
    parse_list,
    parse_options,
    parse_str,
    redact,
    resolve_url,
)

if TYPE_CHECKING:
    from typing import Self

    from missive.contexts import ProcessingContext
    from missive.processor import Processor

M = TypeVar("M", bound=Message)

logger = logging.getLogger(__name__)


#: How many channel (and pattern) attribute mappings are kept for reuse.
_ATTRIBUTE_CACHE_SIZE = 1024


class ConnectionSilent(RedisTimeoutError):
    """The server did not answer a health-check PING in time (half-open link).

    :attr:`silent_since` is when the server was last heard from: messages
    published from then on were missed, not only from the failed PING on.
    """

    def __init__(self, message: str, silent_since: datetime.datetime) -> None:
        super().__init__(message)
        self.silent_since = silent_since


class RedisPubSubAdapter(RunnableAdapter[M]):
    """Consume Redis Pub/Sub channels and glob patterns: **at-most-once**.

    Redis does not store Pub/Sub messages, so there is nothing to acknowledge
    and nothing to redeliver: ``ack`` does nothing and ``nack`` logs a warning
    that the message is lost.  Messages published while the connection is
    down are missed; the adapter logs when such a gap starts and ends.  When
    messages must not be lost, use
    :class:`~missive_redis.streams.RedisStreamAdapter` instead.

    Failed messages follow the processor's DLQ policy.  Without a DLQ, a
    failure is logged with its traceback and the adapter goes on.

    The adapter keeps one dedicated connection.  When it drops, or stays
    silent for ``health_check_interval`` and then does not answer a PING
    within ``read_timeout`` (a half-open connection), the adapter reconnects
    with exponential backoff and jitter and subscribes again, so it survives
    ``CLIENT KILL`` and a server restart.

    Each message's attributes are ``channel`` and ``transport_id`` (both the
    channel name) and, for a pattern subscription, ``pattern``.

    :param message_cls: the message class built from each payload.
    :param processor: the processor that handles the messages.
    :param channels: channel names to subscribe to.
    :param patterns: glob patterns to subscribe to (``PSUBSCRIBE``).
    :param url: ``redis://``, ``rediss://`` or ``unix://``; defaults to the
        ``MISSIVE_REDIS_URL`` environment variable, then
        ``redis://localhost:6379/0``.
    :param client_name: the name the connection shows in ``CLIENT LIST``.
    :param health_check_interval: seconds of silence after which the adapter
        PINGs the server.
    :param read_timeout: seconds to wait for the PING's answer, or for the
        rest of a message that started to arrive, before reconnecting.
    :param connect_timeout: seconds to wait for a connection to open.
    :param reconnect_min_delay: the first reconnect delay, in seconds.
    :param reconnect_max_delay: the largest reconnect delay, in seconds.
    :raises ValueError: no channel nor pattern, or an unsupported URL.
    """

    cli_options = (
        "channels",
        "patterns",
        "url",
        "client_name",
        "health_check_interval",
        "read_timeout",
        "connect_timeout",
        "reconnect_min_delay",
        "reconnect_max_delay",
    )

    def __init__(
        self,
        message_cls: type[M],
        processor: Processor[M],
        channels: str | Iterable[str] = (),
        *,
        patterns: str | Iterable[str] = (),
        url: str | None = None,
        client_name: str | None = "missive-pubsub",
        health_check_interval: float = 5.0,
        read_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 10.0,
    ) -> None:
        super().__init__(message_cls, processor)
        self.channels = [channels] if isinstance(channels, str) else list(channels)
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self.channels and not self.patterns:
            raise ValueError("give at least one channel or pattern to subscribe to")
        if health_check_interval <= 0 or read_timeout <= 0:
            raise ValueError("health_check_interval and read_timeout must be > 0")
        self.url = resolve_url(url)
        self.client_name = client_name
        self.health_check_interval = health_check_interval
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self._backoff = Backoff(reconnect_min_delay, reconnect_max_delay)
        # Typed loosely: redis-py's annotations differ across the versions
        # this distribution supports (5 and later).
        self._connection: Any = None
        self._unconfirmed = 0
        self._gap_started: datetime.datetime | None = None
        self._ever_subscribed = False
        self._attributes: dict[tuple[bytes, bytes | None], Mapping[str, Any]] = {}

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> Self:
        """Build from ``missive run -o`` options.

        ``channels`` and ``patterns`` are comma-separated; the timeouts and
        delays are seconds.
        """
        kwargs = parse_options(
            options,
            {
                "channels": parse_list,
                "patterns": parse_list,
                "url": parse_str,
                "client_name": parse_str,
                "health_check_interval": parse_float,
                "read_timeout": parse_float,
                "connect_timeout": parse_float,
                "reconnect_min_delay": parse_float,
                "reconnect_max_delay": parse_float,
            },
        )
        try:
            return cls(message_cls, processor, **kwargs)
        except ValueError as exc:
            raise TypeError(str(exc)) from exc

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        """Subscribe and hand each message to the processor until stopped."""
        try:
            while not self.stopping:
                try:
                    self._connect()
                    self._read(processing_ctx)
                except CONNECTION_ERRORS as exc:
                    self._lost(exc)
                    self._disconnect()
                    self.shutdown_handler.wait_for_flag(self._backoff.next_delay())
        finally:
            self._disconnect()

    def ack(self, message: M) -> None:
        """Do nothing: Pub/Sub has no acknowledgement."""

    def nack(self, message: M) -> None:
        """Log that the message is lost: Pub/Sub cannot deliver it again."""
        logger.warning(
            "message %r nacked; Redis Pub/Sub cannot redeliver it, so it is lost",
            message.message_id,
        )

    # --- the connection ---------------------------------------------------

    def _connect(self) -> None:
        """Open the dedicated connection and send the subscriptions."""
        pool = redis.ConnectionPool.from_url(
            self.url,
            **connection_kwargs(
                client_name=self.client_name,
                read_timeout=self.read_timeout,
                connect_timeout=self.connect_timeout,
                resp2=True,
            ),
        )
        connection = pool.connection_class(**pool.connection_kwargs)
        self._connection = connection
        connection.connect()

        # The confirmations are read with the messages, in _read.
        self._unconfirmed = 0
        if self.channels:
            connection.send_command("SUBSCRIBE", *self.channels, check_health=False)
            self._unconfirmed += len(self.channels)
        if self.patterns:
            connection.send_command("PSUBSCRIBE", *self.patterns, check_health=False)
            self._unconfirmed += len(self.patterns)

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.disconnect()
            except Exception:
                logger.debug("error while closing the connection", exc_info=True)

    def _lost(self, error: BaseException) -> None:
        """Log the start of a gap in the subscription, once per gap."""
        if self._gap_started is None:
            self._gap_started = (
                error.silent_since if isinstance(error, ConnectionSilent) else _utcnow()
            )
            if not self._ever_subscribed:
                logger.warning(
                    "cannot subscribe on %s (%s: %s); retrying",
                    redact(self.url),
                    type(error).__name__,
                    error,
                )
                return
            logger.warning(
                "lost the Pub/Sub connection to %s (%s: %s) at %s; reconnecting. "
                "Messages published until it is back are missed",
                redact(self.url),
                type(error).__name__,
                error,
                self._gap_started.isoformat(timespec="milliseconds"),
            )
        else:
            logger.info("still cannot reach %s: %s", redact(self.url), error)

    def _subscribed(self) -> None:
        """Called when the server confirmed every subscription."""
        self._backoff.reset()
        first, self._ever_subscribed = not self._ever_subscribed, True
        if self._gap_started is None or first:
            self._gap_started = None
            logger.info(
                "subscribed to channels %s and patterns %s on %s",
                self.channels,
                self.patterns,
                redact(self.url),
            )
            return
        ended = _utcnow()
        logger.warning(
            "Pub/Sub subscription restored on %s; gap from %s to %s (%.3f s): "
            "messages published then were missed",
            redact(self.url),
            self._gap_started.isoformat(timespec="milliseconds"),
            ended.isoformat(timespec="milliseconds"),
            (ended - self._gap_started).total_seconds(),
        )
        self._gap_started = None

    # --- reading ----------------------------------------------------------

    def _read(self, processing_ctx: ProcessingContext[M]) -> None:
        """Read frames until stopped; raise a connection error when it drops."""
        connection = self._connection
        assert connection is not None
        handle = processing_ctx.handle
        message_cls = self.message_cls
        attributes = self._attributes
        poll = min(0.5, self.health_check_interval)
        last_seen = time.monotonic()
        seen = False
        ping_sent: float | None = None

        while not self.stopping:
            # Quiet line: PING after a while, and give up if PONG never comes.
            if not connection.can_read(timeout=poll):
                now = time.monotonic()
                if seen:
                    last_seen, seen = now, False
                if ping_sent is not None:
                    if now - ping_sent > self.read_timeout:
                        raise ConnectionSilent(
                            f"no answer to PING within {self.read_timeout} s",
                            _utcnow() - datetime.timedelta(seconds=now - last_seen),
                        )
                elif now - last_seen >= self.health_check_interval:
                    connection.send_command("PING", check_health=False)
                    ping_sent = now
                continue

            frame = connection.read_response()
            seen = True
            kind = frame[0]
            if kind == b"message":
                key: tuple[bytes, bytes | None] = (frame[1], None)
                payload = frame[2]
            elif kind == b"pmessage":
                key = (frame[2], frame[1])
                payload = frame[3]
            else:
                if kind == b"pong":
                    ping_sent = None
                elif kind in (b"subscribe", b"psubscribe"):
                    self._unconfirmed -= 1
                    if self._unconfirmed == 0:
                        self._subscribed()
                continue

            attrs = attributes.get(key)
            if attrs is None:
                attrs = self._attributes_for(key)
            message = message_cls(payload, attributes=attrs)
            try:
                handle(message)
            except Exception:
                logger.exception(
                    "message %r from channel %s failed and is lost: no DLQ is "
                    "set and Pub/Sub cannot redeliver",
                    message.message_id,
                    attrs["channel"],
                )

    def _attributes_for(self, key: tuple[bytes, bytes | None]) -> Mapping[str, Any]:
        """Build, and keep for reuse, the read-only attributes of a channel."""
        channel, pattern = key
        name = channel.decode("utf-8", "replace")
        attrs: dict[str, Any] = {"channel": name, "transport_id": name}
        if pattern is not None:
            attrs["pattern"] = pattern.decode("utf-8", "replace")
        if len(self._attributes) >= _ATTRIBUTE_CACHE_SIZE:
            self._attributes.clear()
        frozen = types.MappingProxyType(attrs)
        self._attributes[key] = frozen
        return frozen


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
