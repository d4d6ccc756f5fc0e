"""Graceful shutdown on SIGINT and SIGTERM."""

from __future__ import annotations

from missive._logger import get_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

logger = get_logger(__name__)


class ShutdownHandler:
    """A flag that SIGINT/SIGTERM (or any thread) sets to ask for a clean exit.

    Long-running loops check :meth:`should_exit` between messages, or block in
    :meth:`wait_for_flag`.  The optional ``callback`` runs in the signal
    handler, after the flag is set, to wake up whatever is blocked.

    :param callback: called as ``callback()`` when a signal arrives.
    """

    def __init__(self, callback: Callable[[], None] | None = None) -> None:
        self.callback = callback
        import threading  # deferred: not needed to import missive

        self._flag = threading.Event()
        self._previous: dict[int, Any] = {}

    def enable(self) -> None:
        """Install the signal handlers; call from the main thread only.

        The handlers that were installed before are restored by
        :meth:`disable`.
        """
        import signal  # deferred: the signal module costs a start-up budget

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self.signal_handler)

    def disable(self) -> None:
        """Restore the signal handlers that :meth:`enable` replaced."""
        import signal

        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)

    def signal_handler(self, signum: int, frame: FrameType | None) -> None:
        """Set the flag; a second signal while stopping exits at once."""
        import signal

        if self._flag.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            raise KeyboardInterrupt
        logger.info("%s received: stopping", signal.Signals(signum).name)
        self.set_flag()
        if self.callback is not None:
            self.callback()

    def set_flag(self) -> None:
        """Ask for a clean exit.  Safe from any thread."""
        self._flag.set()

    def should_exit(self) -> bool:
        """Return whether a clean exit was asked for."""
        return self._flag.is_set()

    def wait_for_flag(self, timeout: float | None = None) -> bool:
        """Block until a clean exit is asked for, or ``timeout`` seconds pass.

        :returns: whether the flag is set.
        """
        return self._flag.wait(timeout)

    def clear(self) -> None:
        """Forget an earlier request, so that a loop can run again."""
        self._flag.clear()
