"""Run-time stand-ins for the parts of :mod:`typing` that core uses.

``import missive`` has a start-up budget of a few milliseconds, and importing
:mod:`typing` alone takes more than that.  Type checkers see the real
``Generic``, ``TypeVar``, ``cast`` and ``overload`` (``TYPE_CHECKING`` is
true for them); at run time these stand-ins keep what users rely on:
subscripting a class (``Processor[JSONMessage]``) gives a
:class:`types.GenericAlias` that can be called and used as a base class.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Generic as Generic
    from typing import TypeVar as TypeVar
    from typing import cast as cast
    from typing import overload as overload
else:
    import types

    class Generic:
        """Run-time stand-in for :class:`typing.Generic`."""

        __slots__ = ()

        def __class_getitem__(cls, parameters):
            return types.GenericAlias(cls, parameters)

    def TypeVar(name, *constraints, **options):
        """Run-time stand-in for :class:`typing.TypeVar`: only its name."""
        return name

    def cast(type_, value):
        """Run-time stand-in for :func:`typing.cast`."""
        return value

    def overload(function):
        """Run-time stand-in for :func:`typing.overload`."""
        return function
