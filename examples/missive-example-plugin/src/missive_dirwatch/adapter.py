"""The ``dirwatch`` adapter: each file dropped in a directory is one message.

The directory holds four folders, created when the adapter starts:

- ``incoming/``: producers put files here, with :func:`drop` or by renaming a
  finished file in (a rename is atomic; a file being written is not);
- ``processing/``: a file is renamed here before it is handled, so two
  adapters watching one directory never handle the same file;
- ``done/``: where a file goes once its message was acked, or stored in the
  processor's dead letter queue (which acks it);
- ``failed/``: where a file goes when its message was nacked with
  ``on_nack="fail"``, when handling it raised and it could not be stored in
  a DLQ, or when it is larger than ``max_bytes``.

Every move is a rename inside one directory tree, so a file is always in
exactly one folder.  Names starting with ``.`` are ignored, which is where
:func:`drop` writes before its rename.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from missive import (
    DeadLetterError,
    Message,
    ProcessingContext,
    Processor,
    RunnableAdapter,
)

M = TypeVar("M", bound=Message)

logger = logging.getLogger(__name__)

#: What ``on_nack`` accepts.
ON_NACK = ("retry", "fail")

_drop_counter = itertools.count(1)


def drop(
    directory: str | os.PathLike[str], payload: bytes, name: str | None = None
) -> str:
    """Publish ``payload`` as a new file of ``directory/incoming/``, atomically.

    The bytes are written to a hidden file first, then renamed, so an adapter
    never reads half a file.

    :param name: the file name, which becomes the message id; by default a
        unique one, ordered by time.
    :returns: the file name.
    """
    incoming = Path(directory) / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    if name is None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_drop_counter)}"
    if name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"{name!r} is not a plain, visible file name")
    hidden = incoming / f".{name}.tmp"
    hidden.write_bytes(payload)
    os.replace(hidden, incoming / name)
    return name


class DirectoryAdapter(RunnableAdapter[M]):
    """Feed each file of ``directory/incoming/`` to a processor, oldest first.

    A file's bytes are the payload, its name the message id (stable across
    redeliveries, so a DLQ keys on it), and its attributes are ``name``,
    ``transport_id`` (the name too) and ``delivery_count``.

    - ack: the file moves to ``done/`` (a file of the same name there is
      replaced);
    - nack: with ``on_nack="retry"`` the file goes back to ``incoming/`` and
      is delivered again after ``retry_delay`` seconds, until it was delivered
      ``max_deliveries`` times; then it is dead-lettered with a reason saying
      so.  With ``on_nack="fail"`` it moves to ``failed/``;
    - the handler raised: the processor's DLQ policy applies (stored and acked,
      so ``done/``); with no DLQ, or when storing failed, the file moves to
      ``failed/`` and the error is logged: nothing is lost.

    Files left in ``processing/`` by a process that died are moved back to
    ``incoming/`` when the adapter starts, and so delivered again.

    ``run()`` polls every ``poll_interval`` seconds until ``stop()``,
    SIGINT or SIGTERM; the file being handled is finished first.  With
    ``once=True`` it returns as soon as ``incoming/`` is empty.

    :param message_cls: the message class built from each file.
    :param processor: the processor that handles the messages.
    :param directory: the directory holding the four folders.
    :param poll_interval: seconds between looks at an empty ``incoming/``.
    :param on_nack: ``"retry"`` or ``"fail"``.
    :param retry_delay: seconds before a nacked file is delivered again.
    :param max_deliveries: deliveries before a file is dead-lettered; ``None``
        for no limit.  Counted by this process.
    :param max_bytes: larger files move to ``failed/`` unread.
    :param once: return when ``incoming/`` is empty instead of waiting.
    :raises ValueError: an option is out of range.
    """

    cli_options = (
        "directory",
        "poll_interval",
        "on_nack",
        "retry_delay",
        "max_deliveries",
        "max_bytes",
        "once",
    )

    def __init__(
        self,
        message_cls: type[M],
        processor: Processor[M],
        directory: str | os.PathLike[str],
        *,
        poll_interval: float = 0.5,
        on_nack: str = "retry",
        retry_delay: float = 1.0,
        max_deliveries: int | None = 5,
        max_bytes: int = 16 * 1024 * 1024,
        once: bool = False,
    ) -> None:
        super().__init__(message_cls, processor)
        if on_nack not in ON_NACK:
            raise ValueError(f"on_nack must be one of {', '.join(ON_NACK)}")
        if poll_interval <= 0 or retry_delay < 0 or max_bytes < 0:
            raise ValueError(
                "poll_interval must be > 0, retry_delay and max_bytes >= 0"
            )
        if max_deliveries is not None and max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1, or None")
        self.directory = Path(directory)
        self.incoming = self.directory / "incoming"
        self.processing = self.directory / "processing"
        self.done = self.directory / "done"
        self.failed = self.directory / "failed"
        self.poll_interval = poll_interval
        self.on_nack = on_nack
        self.retry_delay = retry_delay
        self.max_deliveries = max_deliveries
        self.max_bytes = max_bytes
        self.once = once
        self._lock = threading.Lock()
        self._deliveries: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> DirectoryAdapter[M]:
        """Build from ``missive run -o key=value`` options."""
        unknown = set(options) - set(cls.cli_options)
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(cls.cli_options)}"
            )
        if "directory" not in options:
            raise TypeError("missing required option: directory")
        limit = options.get("max_deliveries", "5").strip().lower()
        try:
            return cls(
                message_cls,
                processor,
                options["directory"],
                poll_interval=float(options.get("poll_interval", 0.5)),
                on_nack=options.get("on_nack", "retry"),
                retry_delay=float(options.get("retry_delay", 1.0)),
                max_deliveries=None if limit == "none" else int(limit),
                max_bytes=int(options.get("max_bytes", 16 * 1024 * 1024)),
                once=options.get("once", "false").lower() in ("1", "true", "yes"),
            )
        except ValueError as exc:
            raise TypeError(str(exc)) from exc

    # --- running ------------------------------------------------------------

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        """Hand each ready file to the processor until stopped."""
        self._prepare()
        logger.info("watching %s", self.incoming)
        while not self.stopping:
            names = self._ready_names()
            if not names:
                if self.once and not self._pending_retries():
                    logger.info("%s is empty; stopping", self.incoming)
                    return
                self.shutdown_handler.wait_for_flag(self.poll_interval)
                continue
            for name in names:
                # A stop asked while the previous file was handled ends here.
                if self.shutdown_handler.should_exit():
                    return
                self._deliver(processing_ctx, name)

    def ack(self, message: M) -> None:
        """Move the message's file to ``done/``."""
        name = message.attributes["name"]
        self._move(name, self.processing, self.done)
        self._forget(name)

    def nack(self, message: M) -> None:
        """Retry the file later, or move it to ``failed/`` (see ``on_nack``)."""
        name = message.attributes["name"]
        if self.on_nack == "fail":
            self._move(name, self.processing, self.failed)
            self._forget(name)
            return
        with self._lock:
            self._not_before[name] = time.monotonic() + self.retry_delay
        self._move(name, self.processing, self.incoming)
        logger.debug("file %s nacked; retrying in %g s", name, self.retry_delay)

    # --- one file -----------------------------------------------------------

    def _deliver(self, processing_ctx: ProcessingContext[M], name: str) -> None:
        """Claim one file, build its message and let the processor decide."""
        try:
            os.rename(self.incoming / name, self.processing / name)
        except FileNotFoundError:
            logger.debug("file %s was taken by another consumer", name)
            return

        claimed = self.processing / name
        size = claimed.stat().st_size
        if size > self.max_bytes:
            logger.error(
                "file %s is %d bytes, more than max_bytes=%d: moved to %s unread",
                name,
                size,
                self.max_bytes,
                self.failed,
            )
            self._move(name, self.processing, self.failed)
            return

        with self._lock:
            count = self._deliveries.get(name, 0) + 1
            self._deliveries[name] = count
        message = self.message_cls(
            claimed.read_bytes(),
            name.encode(),
            attributes={"name": name, "transport_id": name, "delivery_count": count},
        )
        try:
            if self.max_deliveries is not None and count > self.max_deliveries:
                processing_ctx.dead_letter(
                    message,
                    f"delivered {count} times, more than "
                    f"max_deliveries={self.max_deliveries}",
                )
            else:
                processing_ctx.handle(message)
        except DeadLetterError as exc:
            logger.error(
                "file %s could not be dead-lettered (%s); moved to failed/", name, exc
            )
            self._move(name, self.processing, self.failed)
        except Exception:
            logger.exception("file %s failed and no DLQ is set; moved to failed/", name)
            self._move(name, self.processing, self.failed)

    # --- the folders --------------------------------------------------------

    def _prepare(self) -> None:
        """Create the folders; send files a dead process left back to incoming."""
        for folder in (self.incoming, self.processing, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        for left in sorted(self.processing.iterdir()):
            logger.warning(
                "file %s was left in processing/; delivering it again", left.name
            )
            self._move(left.name, self.processing, self.incoming)

    def _ready_names(self) -> list[str]:
        """Visible files of ``incoming/`` not waiting for a retry, oldest first."""
        now = time.monotonic()
        found: list[tuple[int, str]] = []
        for entry in os.scandir(self.incoming):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            with self._lock:
                if self._not_before.get(entry.name, 0.0) > now:
                    continue
            try:
                found.append((entry.stat().st_mtime_ns, entry.name))
            except FileNotFoundError:
                continue
        return [name for _, name in sorted(found)]

    def _pending_retries(self) -> bool:
        with self._lock:
            return bool(self._not_before)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._deliveries.pop(name, None)
            self._not_before.pop(name, None)

    def _move(self, name: str, source: Path, target: Path) -> None:
        os.replace(source / name, target / name)
