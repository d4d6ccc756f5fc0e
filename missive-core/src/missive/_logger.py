"""Module loggers that import :mod:`logging` only when it can matter.

Each module of core that ``import missive`` loads still has one logger named
after it, but :mod:`logging` (which, with what it imports, costs more than
the start-up budget of ``import missive``) is not imported for it.  While
nothing else has imported :mod:`logging`, nothing can have configured it
either: DEBUG and INFO records would be dropped by the default WARNING level,
so they are skipped without importing it, and anything from WARNING up
imports it and is logged as usual.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any


#: ``logging.WARNING``, the root logger's level until someone configures it.
_WARNING = 30


class _LazyLogger:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: logging.Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._resolve(), attribute)

    def _resolve(self) -> logging.Logger:
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self._name)
        return logger

    def _unconfigured(self) -> bool:
        return self._logger is None and "logging" not in sys.modules

    def isEnabledFor(self, level: int) -> bool:
        if self._unconfigured():
            return level >= _WARNING
        return self._resolve().isEnabledFor(level)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        if not self._unconfigured():
            self._resolve().debug(message, *args, **kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        if not self._unconfigured():
            self._resolve().info(message, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<logger {self._name} (not yet created)>"


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name``, created when it is first used."""
    lazy: Any = _LazyLogger(name)
    return lazy  # type: ignore[no-any-return]
