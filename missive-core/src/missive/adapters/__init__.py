"""Adapters connect a processor to a message transport.

:class:`Adapter` is the minimal contract: ``ack`` and ``nack``.  Adapters that
pull messages themselves derive from :class:`RunnableAdapter`, which defines
how they run and stop:

- ``run()`` blocks, feeding messages to the processor, until the source is
  exhausted or a stop is requested;
- ``stop()`` may be called from any thread or from a signal handler; the
  message being handled finishes and is settled, and no new one is taken;
- when ``run()`` is called on the main thread, SIGINT and SIGTERM call
  ``stop()``, and a second signal exits at once.

Adapters are plugins: ``load("redis")`` returns the class an installed
distribution registered under that name (entry-point group
``missive.adapters``).  Importing ``missive.adapters.<name>`` gives the module
of the plugin that provides ``<name>``.
"""

from __future__ import annotations

import abc

from missive import _plugin_modules
from missive._logger import get_logger
from missive._typing import Generic, TypeVar
from missive.shutdown_handler import ShutdownHandler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar, Self

    from missive.contexts import ProcessingContext
    from missive.messages import Message
    from missive.processor import Processor

M = TypeVar("M", bound="Message")

logger = get_logger(__name__)

_plugin_modules.install(__name__, "missive.adapters")


class Adapter(abc.ABC, Generic[M]):
    """The API between a :class:`~missive.Processor` and a transport.

    Subclasses implement :meth:`ack` and :meth:`nack`; how messages arrive is
    up to them (see :class:`RunnableAdapter`).
    """

    def __init__(self, processor: Processor[M]) -> None:
        self.processor = processor

    @abc.abstractmethod
    def ack(self, message: M) -> None:
        """Mark a message as acknowledged.

        :param message: the message object to be acknowledged.
        """

    @abc.abstractmethod
    def nack(self, message: M) -> None:
        """Mark a message as negatively acknowledged.

        What that means depends on the transport: usually the message is
        returned to the queue it came from so that it is delivered again.

        :param message: the message object to be rejected.
        """


class RunnableAdapter(Adapter[M]):
    """An adapter that pulls messages from its source in :meth:`run`.

    Subclasses implement :meth:`consume`, which hands each message to
    ``processing_ctx.handle`` and returns once :attr:`stopping` is true or
    the source is exhausted.  A subclass that blocks on I/O overrides
    :meth:`interrupt` to unblock it.

    :param message_cls: the message class built from each payload.
    :param processor: the processor that handles the messages.
    """

    #: Names of the constructor's options that ``missive run -o`` may set.
    cli_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message_cls: type[M], processor: Processor[M]) -> None:
        super().__init__(processor)
        self.message_cls = message_cls
        self.shutdown_handler = ShutdownHandler(callback=self.interrupt)

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> Self:
        """Build the adapter from ``missive run`` options (``-o key=value``).

        The default passes every option as a string keyword argument; an
        adapter whose options need parsing overrides this.
        """
        return cls(message_cls, processor, **options)

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self.shutdown_handler.should_exit()

    def run(self) -> None:
        """Process messages until the source is exhausted or a stop is asked.

        Runs the processor's ``before_processing`` hooks first and its
        ``after_processing`` hooks last.
        """
        import threading

        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            self.shutdown_handler.enable()
        try:
            with self.processor.context(self.message_cls, self) as ctx:
                logger.info("%s started", type(self).__name__)
                self.consume(ctx)
        finally:
            if on_main_thread:
                self.shutdown_handler.disable()
            logger.info("%s stopped", type(self).__name__)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the message in flight is settled.

        Safe to call from any thread and from a signal handler.
        """
        self.shutdown_handler.set_flag()

    def interrupt(self) -> None:
        """Called in the signal handler after a stop was requested.

        The default does nothing: :meth:`consume` notices :attr:`stopping`
        after the current message.  Adapters blocked in a read that a signal
        does not end override this.
        """

    @abc.abstractmethod
    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        """Hand messages to ``processing_ctx.handle`` until told to stop."""


def load(name: str) -> type[Adapter[Any]]:
    """Return the adapter class registered under ``name`` (``"stdin"``, ...).

    Imports only the plugin that provides ``name``.

    :raises PluginNotFound: no installed distribution provides ``name``; the
        message lists what is installed and what to install.
    :raises PluginLoadError: the plugin providing ``name`` failed to import.
    :raises DuplicatePlugin: two distributions claim ``name``.
    """
    from missive import plugins

    found: type[Adapter[Any]] = plugins.load(plugins.ADAPTERS, name)
    return found


def names() -> list[str]:
    """Return the names of every installed adapter, sorted, from metadata."""
    from missive import plugins

    return plugins.names(plugins.ADAPTERS)
