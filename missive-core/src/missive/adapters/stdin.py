"""The stdin adapter: one message per line of a binary stream."""

from __future__ import annotations

import sys

from missive._logger import get_logger
from missive._typing import TypeVar
from missive.adapters import RunnableAdapter
from missive.messages import Message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Self

    from missive.contexts import ProcessingContext
    from missive.processor import Processor

M = TypeVar("M", bound=Message)

logger = get_logger(__name__)


class _StopReading(Exception):
    """Raised by the signal handler to end a read that is blocked on input."""


class StdinAdapter(RunnableAdapter[M]):
    """Feed each line of a binary stream (standard input by default) to a
    processor, with the trailing newline stripped.

    :meth:`run` returns at the end of input.  SIGINT and SIGTERM stop it
    gracefully: the line being handled finishes, and a read that is waiting
    for input is abandoned.  :meth:`stop` from another thread takes effect
    after the next line arrives.

    A line is all a pipe can carry, so there is nothing to redeliver: ``ack``
    only counts, and ``nack`` logs a warning.

    :param message_cls: the message class built from each line.
    :param processor: the processor that handles the messages.
    :param filelike: a binary stream to read instead of standard input.
    """

    def __init__(
        self,
        message_cls: type[M],
        processor: Processor[M],
        filelike: IO[bytes] | None = None,
    ) -> None:
        super().__init__(message_cls, processor)
        self.filelike = filelike
        self.acked_count = 0
        self.nacked_count = 0
        self._waiting_for_input = False
        self._owns_filelike = False

    cli_options = ("path",)

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> Self:
        """Build from ``missive run`` options: ``path`` reads a file, not stdin."""
        unknown = set(options) - set(cls.cli_options)
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(cls.cli_options)}"
            )
        if "path" not in options:
            return cls(message_cls, processor)
        adapter = cls(message_cls, processor, open(options["path"], "rb"))  # noqa: SIM115
        adapter._owns_filelike = True
        return adapter

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        stream = self.filelike if self.filelike is not None else sys.stdin.buffer
        message_cls = self.message_cls
        line = b""
        try:
            while not self.stopping:
                line = b""
                self._waiting_for_input = True
                line = stream.readline()
                self._waiting_for_input = False
                if not line:
                    logger.info("end of input")
                    return
                processing_ctx.handle(message_cls(_strip_newline(line)))
        except _StopReading:
            logger.info("stopped while waiting for input")
            if line:
                # The signal came after the line was read: it is still ours.
                processing_ctx.handle(message_cls(_strip_newline(line)))
        finally:
            self._waiting_for_input = False
            if self._owns_filelike:
                stream.close()

    def interrupt(self) -> None:
        # A signal handler runs between bytecodes of the main thread; raising
        # here ends the readline only if that is where the thread is waiting.
        if self._waiting_for_input:
            raise _StopReading

    def ack(self, message: M) -> None:
        self.acked_count += 1

    def nack(self, message: M) -> None:
        self.nacked_count += 1
        logger.warning(
            "message %r nacked; stdin cannot redeliver it", message.message_id
        )


def _strip_newline(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line
