"""The ``redis-streams`` adapter: Redis Streams consumer groups, at-least-once.

An entry read through a consumer group stays in the group's pending entries
list (PEL) until it is acknowledged with XACK.  The adapter sends XACK only
after the processor handled the entry or stored it in the dead letter queue,
so a crash at any moment loses nothing: the consumer, restarted under the same
name, handles its own pending entries again before new ones, and entries left
by a consumer that never comes back are claimed by the others once idle.
"""

from __future__ import annotations

import datetime
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.exceptions import ResponseError

from missive.adapters import RunnableAdapter
from missive.errors import DeadLetterError, MissiveError
from missive.messages import Message
from missive_redis._connection import (
    CONNECTION_ERRORS,
    Backoff,
    connection_kwargs,
    parse_float,
    parse_int,
    parse_list,
    parse_optional_int,
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

#: How Redis says that the group is gone: NOGROUP for most commands, and
#: UNBLOCKED for a blocking read whose stream was deleted meanwhile.
_GROUP_LOST_ERRORS = ("NOGROUP", "UNBLOCKED the stream key no longer exists")


class ConsumerGroupLost(MissiveError, RuntimeError):
    """The consumer group (or its stream) disappeared while the adapter ran.

    The adapter never re-creates a group that vanished: the group's position
    and pending entries are gone, and re-creating it would silently skip or
    repeat messages.  Find out who deleted it, re-create it at the right
    position, then restart.
    """


#: ``(stream, entry id, fields, delivery count)``; fields are ``None`` or
#: empty when the entry was trimmed while pending.  A plain tuple: a named
#: tuple costs a Python-level call per entry on the hot path.
_Entry = tuple[str, bytes, "dict[bytes, bytes] | None", int]


class RedisStreamAdapter(RunnableAdapter[M]):
    """Consume Redis Streams through a consumer group: **at-least-once**.

    The group is created on each stream if absent (``XGROUP CREATE ...
    MKSTREAM`` at ``start_id``); a group that vanishes later stops the adapter
    with :class:`ConsumerGroupLost`.

    Reading order: first this consumer's own pending entries (read from
    ``0``, so a restarted consumer finishes what it was handling), then
    entries of any consumer idle for more than ``claim_idle_ms`` (XAUTOCLAIM,
    checked every ``claim_interval_ms``), then new entries (``>``).

    ``ack`` is an XACK sent only after handling; acks are buffered and sent
    in one pipeline before the next read, when ``batch_size`` are waiting,
    after ``ack_delay_ms``, and on stop.  A crash may therefore deliver a
    handled entry again: handlers should be idempotent, keyed on the message
    id.  ``nack`` leaves the entry pending; it is read again right after the
    current batch.  A handler failure without a DLQ also leaves the entry
    pending, to be claimed again after ``claim_idle_ms``.

    An entry delivered more than ``max_deliveries`` times is not handled
    again: it goes to the DLQ with a reason saying so and is acked, or, with
    no DLQ, stays pending and is logged as critical.  An entry without the
    ``payload_field`` goes to the DLQ the same way.  An entry trimmed from
    the stream (``MAXLEN``) while pending is logged as an error, stored in the
    DLQ with an empty payload when there is one, and acked.

    Each message's id is ``b"<stream>/<entry id>"``, the same at every
    delivery; its attributes are ``stream``, ``transport_id`` (the entry id),
    ``delivery_count`` and ``fields`` (the whole entry).

    :param message_cls: the message class built from each payload.
    :param processor: the processor that handles the messages.
    :param streams: the stream keys to read.
    :param group: the consumer group's name.
    :param consumer: this consumer's name within the group; defaults to the
        host name.  It must be stable across restarts and unique among
        running processes: give each process on one host its own.
    :param url: ``redis://``, ``rediss://`` or ``unix://``; defaults to the
        ``MISSIVE_REDIS_URL`` environment variable, then
        ``redis://localhost:6379/0``.
    :param start_id: where a newly created group starts: ``"0"`` (the
        default) for every entry already in the stream, ``"$"`` for only those
        added from now on, or an entry id.
    :param payload_field: the entry field holding the payload.
    :param batch_size: entries read (and acks sent) per round trip.
    :param block_ms: how long one read waits for new entries.
    :param claim_idle_ms: how long an entry must sit unacknowledged before
        another consumer claims it; make it longer than the slowest handler.
    :param claim_interval_ms: how often to look for such entries; defaults to
        half of ``claim_idle_ms``.
    :param max_deliveries: how many deliveries an entry gets before it is
        dead-lettered; ``None`` for no limit.
    :param ack_delay_ms: the longest an ack waits in the buffer.
    :param read_timeout: seconds a reply may take beyond ``block_ms`` before
        the connection is considered dead.
    :param connect_timeout: seconds to wait for a connection to open.
    :param reconnect_min_delay: the first reconnect delay, in seconds.
    :param reconnect_max_delay: the largest reconnect delay, in seconds.
    :param client_name: the name the connection shows in ``CLIENT LIST``.
    :raises ValueError: no stream, an out-of-range number or a bad URL.
    """

    cli_options = (
        "streams",
        "group",
        "consumer",
        "url",
        "start_id",
        "payload_field",
        "batch_size",
        "block_ms",
        "claim_idle_ms",
        "claim_interval_ms",
        "max_deliveries",
        "ack_delay_ms",
        "read_timeout",
        "connect_timeout",
        "reconnect_min_delay",
        "reconnect_max_delay",
        "client_name",
    )

    def __init__(
        self,
        message_cls: type[M],
        processor: Processor[M],
        streams: str | Iterable[str],
        *,
        group: str,
        consumer: str | None = None,
        url: str | None = None,
        start_id: str = "0",
        payload_field: str = "data",
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        claim_interval_ms: int | None = None,
        max_deliveries: int | None = 5,
        ack_delay_ms: int = 200,
        read_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 10.0,
        client_name: str | None = None,
    ) -> None:
        super().__init__(message_cls, processor)
        self.streams = [streams] if isinstance(streams, str) else list(streams)
        if not self.streams:
            raise ValueError("give at least one stream to read")
        if not group:
            raise ValueError("the consumer group's name must not be empty")
        if batch_size < 1 or block_ms < 1 or claim_idle_ms < 0 or ack_delay_ms < 0:
            raise ValueError(
                "batch_size and block_ms must be >= 1, claim_idle_ms and "
                "ack_delay_ms >= 0"
            )
        if max_deliveries is not None and max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1, or None for no limit")
        self.group = group
        self.consumer = consumer or socket.gethostname()
        self.url = resolve_url(url)
        self.start_id = start_id
        self.payload_field = payload_field.encode("utf-8")
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval = (
            claim_idle_ms / 2 if claim_interval_ms is None else claim_interval_ms
        ) / 1000
        self.max_deliveries = max_deliveries
        self.ack_delay = ack_delay_ms / 1000
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.client_name = client_name or f"missive:{self.group}:{self.consumer}"
        self._backoff = Backoff(reconnect_min_delay, reconnect_max_delay)
        # Typed loosely: redis-py's annotations differ across the versions
        # this distribution supports (5 and later).
        self._client: Any = None
        self._prefixes = {s: s.encode("utf-8") + b"/" for s in self.streams}
        self._prefix_lengths = {s: len(p) for s, p in self._prefixes.items()}

        # Acks waiting to be sent: entry ids by stream.
        self._acks: dict[str, list[bytes]] = {s: [] for s in self.streams}
        self._ack_count = 0
        self._ack_deadline = 0.0

        # Where each stream's pass over this consumer's own pending entries is.
        self._pending_cursors: dict[str, str] = {}
        self._repeat_pending = False
        self._claim_cursors: dict[str, str] = {}
        self._claim_due = 0.0
        #: Entries left pending on purpose: over max_deliveries with no DLQ.
        self._parked: set[bytes] = set()
        self._gap_started: datetime.datetime | None = None

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> Self:
        """Build from ``missive run -o`` options.

        ``streams`` is comma-separated, ``group`` is required, and
        ``max_deliveries=none`` removes the limit.
        """
        kwargs = parse_options(
            options,
            {
                "streams": parse_list,
                "group": parse_str,
                "consumer": parse_str,
                "url": parse_str,
                "start_id": parse_str,
                "payload_field": parse_str,
                "batch_size": parse_int,
                "block_ms": parse_int,
                "claim_idle_ms": parse_int,
                "claim_interval_ms": parse_int,
                "max_deliveries": parse_optional_int,
                "ack_delay_ms": parse_int,
                "read_timeout": parse_float,
                "connect_timeout": parse_float,
                "reconnect_min_delay": parse_float,
                "reconnect_max_delay": parse_float,
                "client_name": parse_str,
            },
            required=("streams", "group"),
        )
        streams = kwargs.pop("streams")
        try:
            return cls(message_cls, processor, streams, **kwargs)
        except ValueError as exc:
            raise TypeError(str(exc)) from exc

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        """Read, handle and acknowledge entries until stopped.

        :raises ConsumerGroupLost: the group vanished while running.
        """
        self._client = redis.Redis.from_url(
            self.url,
            **connection_kwargs(
                client_name=self.client_name,
                read_timeout=self.block_ms / 1000 + self.read_timeout,
                connect_timeout=self.connect_timeout,
            ),
        )
        logger.info(
            "consuming streams %s on %s in group %s as consumer %s",
            self.streams,
            redact(self.url),
            self.group,
            self.consumer,
        )
        groups_ready = False
        self._start_pending_pass()
        try:
            while not self.stopping:
                try:
                    if not groups_ready:
                        self._create_groups()
                        groups_ready = True
                    self._flush_acks()
                    entries = self._fetch()
                    self._reachable()
                    if entries:
                        self._process(processing_ctx, entries)
                except ResponseError as exc:
                    if str(exc).startswith(_GROUP_LOST_ERRORS):
                        raise self._group_lost(exc) from exc
                    raise
                except CONNECTION_ERRORS as exc:
                    self._lost(exc)
                    # A lost reply may have delivered entries we never saw.
                    self._start_pending_pass()
                    self.shutdown_handler.wait_for_flag(self._backoff.next_delay())
        finally:
            self._close()

    def ack(self, message: M) -> None:
        """Queue an XACK for the entry; it is sent with the next batch."""
        stream = message.attributes["stream"]
        if not self._ack_count:
            self._ack_deadline = time.monotonic() + self.ack_delay
        # The id is b"<stream>/<entry id>": slicing spares a decode and encode.
        self._acks[stream].append(message.message_id[self._prefix_lengths[stream] :])
        self._ack_count += 1

    def nack(self, message: M) -> None:
        """Leave the entry pending; it is read again after the current batch."""
        logger.debug("entry %r nacked; it stays pending", message.message_id)
        self._repeat_pending = True

    # --- setup and teardown -----------------------------------------------

    def _create_groups(self) -> None:
        """Create the group on every stream that lacks it, at ``start_id``."""
        assert self._client is not None
        for stream in self.streams:
            try:
                self._client.xgroup_create(
                    stream, self.group, id=self.start_id, mkstream=True
                )
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
                logger.debug("group %s already exists on %s", self.group, stream)
            else:
                logger.info(
                    "created consumer group %s on stream %s at %s",
                    self.group,
                    stream,
                    self.start_id,
                )

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._ack_count:
            self._client = client
            try:
                self._flush_acks()
            except Exception as exc:
                logger.error(
                    "could not acknowledge %d handled entries on stop (%s); "
                    "they will be delivered again",
                    self._ack_count,
                    exc,
                )
            self._client = None
        client.close()

    def _group_lost(self, error: ResponseError) -> ConsumerGroupLost:
        logger.critical(
            "consumer group %s vanished from stream(s) %s: %s. Not re-creating "
            "it; stopping",
            self.group,
            self.streams,
            error,
        )
        return ConsumerGroupLost(
            f"consumer group {self.group!r} no longer exists on stream(s) "
            f"{', '.join(self.streams)} ({error}); it was deleted, or its stream "
            "was. Re-create it at the right position (XGROUP CREATE) and restart"
        )

    def _lost(self, error: BaseException) -> None:
        if self._gap_started is None:
            self._gap_started = datetime.datetime.now(datetime.UTC)
            logger.warning(
                "lost the connection to %s (%s: %s); reconnecting",
                redact(self.url),
                type(error).__name__,
                error,
            )
        else:
            logger.info("still cannot reach %s: %s", redact(self.url), error)

    def _reachable(self) -> None:
        if self._gap_started is None:
            return
        gap = datetime.datetime.now(datetime.UTC) - self._gap_started
        logger.warning(
            "reconnected to %s after %.3f s; re-reading this consumer's pending "
            "entries",
            redact(self.url),
            gap.total_seconds(),
        )
        self._gap_started = None
        self._backoff.reset()

    # --- reading ----------------------------------------------------------

    def _start_pending_pass(self) -> None:
        self._pending_cursors = dict.fromkeys(self.streams, "0")
        self._repeat_pending = False

    def _fetch(self) -> list[_Entry]:
        """Return the next batch: own pending, then claimed, then new entries."""
        if not self._pending_cursors and self._repeat_pending:
            self._start_pending_pass()
        if self._pending_cursors:
            entries = self._read_own_pending()
            if entries:
                return entries
        if time.monotonic() >= self._claim_due:
            entries = self._claim_idle()
            if entries:
                return entries
        return self._read_new()

    def _read_own_pending(self) -> list[_Entry]:
        """Read the next entries of this consumer's PEL, from each cursor."""
        assert self._client is not None
        response = self._client.xreadgroup(
            self.group,
            self.consumer,
            dict(self._pending_cursors),
            count=self.batch_size,
        )
        entries: list[_Entry] = []
        unfinished: dict[str, str] = {}
        for stream, items in _stream_items(response):
            if not items:
                continue
            unfinished[stream] = items[-1][0].decode("ascii")
            counts = self._range_delivery_counts(stream, items[0][0], items[-1][0])
            entries.extend(
                (stream, entry_id, fields, counts.get(entry_id, 1))
                for entry_id, fields in items
            )
        self._pending_cursors = unfinished
        if entries:
            logger.info(
                "re-processing %d entries left pending for consumer %s",
                len(entries),
                self.consumer,
            )
        return entries

    def _claim_idle(self) -> list[_Entry]:
        """Claim entries idle for longer than ``claim_idle_ms`` (XAUTOCLAIM)."""
        assert self._client is not None
        entries: list[_Entry] = []
        finished = True
        for stream in self.streams:
            result = self._client.xautoclaim(
                stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                start_id=self._claim_cursors.get(stream, "0-0"),
                count=self.batch_size,
            )
            cursor = _text(result[0])
            self._claim_cursors[stream] = cursor
            finished = finished and cursor == "0-0"
            # Redis 7 drops trimmed entries from the PEL and lists them third.
            for entry_id in result[2] if len(result) > 2 else ():
                self._report_trimmed(stream, _text(entry_id), None)
            claimed = [(i, f) for i, f in result[1] if i is not None]
            if not claimed:
                continue
            counts = self._delivery_counts(stream, [i for i, _ in claimed])
            entries.extend((stream, i, f, counts.get(i, 1)) for i, f in claimed)
            logger.warning(
                "claimed %d entries of stream %s idle for more than %d ms",
                len(claimed),
                stream,
                self.claim_idle_ms,
            )
        if finished:
            self._claim_due = time.monotonic() + self.claim_interval
        return entries

    def _read_new(self) -> list[_Entry]:
        assert self._client is not None
        response = self._client.xreadgroup(
            self.group,
            self.consumer,
            dict.fromkeys(self.streams, ">"),
            count=self.batch_size,
            block=self.block_ms,
        )
        return [
            (stream, entry_id, fields, 1)
            for stream, items in _stream_items(response)
            for entry_id, fields in items
        ]

    def _range_delivery_counts(
        self, stream: str, first: bytes, last: bytes
    ) -> dict[bytes, int]:
        """Delivery counts of this consumer's pending entries in a range."""
        assert self._client is not None
        pending = self._client.xpending_range(
            stream,
            self.group,
            min=first,
            max=last,
            count=self.batch_size,
            consumername=self.consumer,
        )
        return {p["message_id"]: int(p["times_delivered"]) for p in pending}

    def _delivery_counts(self, stream: str, ids: list[bytes]) -> dict[bytes, int]:
        """Delivery counts of the given pending entries, in one pipeline."""
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
        counts: dict[bytes, int] = {}
        for pending in pipe.execute():
            for p in pending:
                counts[p["message_id"]] = int(p["times_delivered"])
        return counts

    # --- handling ---------------------------------------------------------

    def _process(
        self, processing_ctx: ProcessingContext[M], entries: list[_Entry]
    ) -> None:
        """Hand each entry to the processor; stop early if asked to."""
        handle = processing_ctx.handle
        message_cls = self.message_cls
        field = self.payload_field
        max_deliveries = self.max_deliveries
        prefixes = self._prefixes
        should_exit = self.shutdown_handler.should_exit

        for index, (stream, entry_id, fields, count) in enumerate(entries):
            if should_exit():
                logger.info(
                    "stopping with %d fetched entries not handled; they stay "
                    "pending and this consumer reads them again on restart",
                    len(entries) - index,
                )
                return
            transport_id = entry_id.decode("ascii")
            if not fields:
                self._report_trimmed(stream, transport_id, count)
                continue

            message = message_cls(
                fields.get(field, b""),
                prefixes[stream] + entry_id,
                attributes={
                    "stream": stream,
                    "transport_id": transport_id,
                    "delivery_count": count,
                    "fields": fields,
                },
            )
            if field not in fields:
                names = ", ".join(sorted(k.decode("utf-8", "replace") for k in fields))
                self._dead_letter(
                    processing_ctx,
                    message,
                    f"entry has no {field.decode()!r} field (its fields: {names})",
                )
            elif max_deliveries is not None and count > max_deliveries:
                self._dead_letter(
                    processing_ctx,
                    message,
                    f"delivered {count} times, more than max_deliveries="
                    f"{max_deliveries}",
                )
            else:
                try:
                    handle(message)
                except DeadLetterError:
                    logger.error(
                        "entry %r stays pending: the DLQ could not store it; it "
                        "is delivered again after %d ms idle",
                        message.message_id,
                        self.claim_idle_ms,
                    )
                except Exception:
                    logger.exception(
                        "entry %r failed and no DLQ is set; it stays pending and "
                        "is delivered again after %d ms idle",
                        message.message_id,
                        self.claim_idle_ms,
                    )

            acks = self._ack_count
            if acks and (
                acks >= self.batch_size or time.monotonic() >= self._ack_deadline
            ):
                self._flush_acks()

    def _dead_letter(
        self, processing_ctx: ProcessingContext[M], message: M, reason: str
    ) -> None:
        """Dead-letter an entry the adapter refuses to handle (and ack it).

        With no DLQ, or when storing fails, the entry stays pending and is
        logged as critical, once per process.
        """
        try:
            processing_ctx.dead_letter(message, reason)
        except DeadLetterError as exc:
            if message.message_id not in self._parked:
                self._parked.add(message.message_id)
                logger.critical(
                    "entry %r cannot be handled (%s) and was not dead-lettered "
                    "(%s): it stays pending in group %s, unhandled. Set a DLQ, "
                    "or XACK or XCLAIM it by hand",
                    message.message_id,
                    reason,
                    exc,
                    self.group,
                )

    def _report_trimmed(
        self, stream: str, transport_id: str, count: int | None
    ) -> None:
        """Report an entry trimmed from the stream while it was pending."""
        message = self.message_cls(
            b"",
            self._prefixes[stream] + transport_id.encode("ascii"),
            attributes={
                "stream": stream,
                "transport_id": transport_id,
                "delivery_count": count,
                "fields": {},
            },
        )
        logger.error(
            "entry %r was trimmed from stream %s while still pending (not yet "
            "acknowledged by group %s): its payload is lost",
            message.message_id,
            stream,
            self.group,
        )
        dlq = self.processor.dlq
        if dlq is not None:
            try:
                dlq[message.message_id] = (
                    message,
                    "trimmed from the stream (MAXLEN) while pending; payload lost",
                )
            except Exception:
                logger.exception(
                    "could not record trimmed entry %r in the DLQ", message.message_id
                )
        if count is not None:
            self.ack(message)

    def _flush_acks(self) -> None:
        """Send every queued XACK in one pipeline."""
        if not self._ack_count:
            return
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        for stream, ids in self._acks.items():
            if ids:
                pipe.xack(stream, self.group, *ids)
        pipe.execute()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("acknowledged %d entries", self._ack_count)
        self._acks = {s: [] for s in self.streams}
        self._ack_count = 0


def _stream_items(response: Any) -> list[tuple[str, list[tuple[bytes, Any]]]]:
    """Normalise an XREADGROUP reply to ``[(stream, [(id, fields), ...])]``.

    RESP2 replies come as ``[[stream, entries], ...]``; RESP3 replies as
    ``{stream: [entries]}``, with one more level of list.
    """
    if not response:
        return []
    if not isinstance(response, dict):
        return [(_text(stream), items) for stream, items in response]
    return [
        (_text(stream), items[0] if items and isinstance(items[0], list) else items)
        for stream, items in response.items()
    ]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
