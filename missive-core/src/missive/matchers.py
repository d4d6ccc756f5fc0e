"""Composable matchers for the common cases, with readable reprs.

Any callable ``message -> bool`` is a matcher; these are ready-made ones::

    from missive.matchers import attribute, field, raw_prefix

    @processor.handle_for(field("type").equals("order-created"))
    def record_order(message, ctx): ...

    @processor.handle_for(field("type").one_of({"refund", "chargeback"}))
    def money_back(message, ctx): ...

    @processor.handle_for(field("customer.id").exists() & ~raw_prefix(b"{}"))
    def with_customer(message, ctx): ...

    @processor.handle_for(attribute("channel").equals("audit"))
    def audit(message, ctx): ...

They combine with ``&``, ``|`` and ``~``, compare equal when they match the
same thing (so registering two handlers for ``field("type").equals("a")``
is refused), and their repr says what they match, which is what logs and DLQ
reasons show.

Equality matchers (``equals`` and ``one_of``) are indexed by the processor:
routing among a thousand handlers keyed on different values of one field
costs about as much as among ten, and the exactly-one rule still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final

from missive.messages import Message

#: What a source returns when the message does not have the value at all.
MISSING: Final[Any] = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


class Matcher:
    """Base class of the ready-made matchers: combinable with ``& | ~``."""

    __slots__ = ()

    def __call__(self, message: Message) -> bool:
        raise NotImplementedError

    def __and__(self, other: Callable[[Any], Any]) -> Matcher:
        return AllOf(self, other)

    def __rand__(self, other: Callable[[Any], Any]) -> Matcher:
        return AllOf(other, self)

    def __or__(self, other: Callable[[Any], Any]) -> Matcher:
        return AnyOf(self, other)

    def __ror__(self, other: Callable[[Any], Any]) -> Matcher:
        return AnyOf(other, self)

    def __invert__(self) -> Matcher:
        return Not(self)

    def index_entry(self) -> tuple[Source, tuple[Hashable, ...]] | None:
        """Where to find this matcher in an index: a source and the values
        of that source it accepts, or ``None`` when it must be evaluated."""
        return None

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Matcher)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))


# --- sources: where a value is read from --------------------------------------


class Source:
    """Reads one value out of a message, or returns :data:`MISSING`."""

    __slots__ = ()

    def extract(self, message: Message) -> Any:
        raise NotImplementedError

    def equals(self, value: Any) -> Matcher:
        """Match messages whose value here equals ``value``."""
        return Equals(self, value)

    def one_of(self, values: Iterable[Any]) -> Matcher:
        """Match messages whose value here equals one of ``values``."""
        return OneOf(self, values)

    def exists(self) -> Matcher:
        """Match messages that have a value here (``null`` included)."""
        return Exists(self)


class JSONField(Source):
    """A field of a JSON message's payload, by dotted path (``"a.b"``).

    A message that is not a JSON message, a payload that is not an object at
    some step of the path, or a missing key all give :data:`MISSING`.  A
    payload that is not valid JSON raises
    :class:`~missive.errors.MessageDecodeError`, which routing turns into a
    dead letter.
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = tuple(path.split("."))

    def extract(self, message: Message) -> Any:
        get_json = getattr(message, "get_json", None)
        if get_json is None:
            return MISSING
        value = get_json()
        for key in self.path:
            if not isinstance(value, dict):
                return MISSING
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        return value

    def __repr__(self) -> str:
        return f"field({'.'.join(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JSONField) and other.path == self.path

    def __hash__(self) -> int:
        return hash((JSONField, self.path))


class Attribute(Source):
    """A transport attribute of a message, such as ``channel`` or ``stream``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def extract(self, message: Message) -> Any:
        return message.attributes.get(self.name, MISSING)

    def __repr__(self) -> str:
        return f"attribute({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attribute) and other.name == self.name

    def __hash__(self) -> int:
        return hash((Attribute, self.name))


def field(path: str) -> JSONField:
    """A field of the JSON payload, by dotted path: ``field("order.id")``."""
    return JSONField(path)


def attribute(name: str) -> Attribute:
    """A transport attribute of the message: ``attribute("channel")``."""
    return Attribute(name)


# --- matchers on a source -----------------------------------------------------


class Equals(Matcher):
    """The source's value equals ``value``."""

    __slots__ = ("source", "value")

    def __init__(self, source: Source, value: Any) -> None:
        self.source = source
        self.value = value

    def __call__(self, message: Message) -> bool:
        found = self.source.extract(message)
        return found is not MISSING and bool(found == self.value)

    def index_entry(self) -> tuple[Source, tuple[Hashable, ...]] | None:
        return (self.source, (self.value,)) if _hashable(self.value) else None

    def _key(self) -> tuple[Any, ...]:
        return (self.source, _freeze(self.value))

    def __repr__(self) -> str:
        return f"{self.source!r}.equals({self.value!r})"


class OneOf(Matcher):
    """The source's value equals one of ``values``."""

    __slots__ = ("source", "values")

    def __init__(self, source: Source, values: Iterable[Any]) -> None:
        self.source = source
        self.values = tuple(values)

    def __call__(self, message: Message) -> bool:
        found = self.source.extract(message)
        return found is not MISSING and any(found == value for value in self.values)

    def index_entry(self) -> tuple[Source, tuple[Hashable, ...]] | None:
        if all(_hashable(value) for value in self.values):
            return self.source, self.values
        return None

    def _key(self) -> tuple[Any, ...]:
        return (self.source, tuple(_freeze(value) for value in self.values))

    def __repr__(self) -> str:
        return f"{self.source!r}.one_of({list(self.values)!r})"


class Exists(Matcher):
    """The source has a value."""

    __slots__ = ("source",)

    def __init__(self, source: Source) -> None:
        self.source = source

    def __call__(self, message: Message) -> bool:
        return self.source.extract(message) is not MISSING

    def _key(self) -> tuple[Any, ...]:
        return (self.source,)

    def __repr__(self) -> str:
        return f"{self.source!r}.exists()"


class RawPrefix(Matcher):
    """The raw payload starts with ``prefix``."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def __call__(self, message: Message) -> bool:
        return message.raw_data.startswith(self.prefix)

    def _key(self) -> tuple[Any, ...]:
        return (self.prefix,)

    def __repr__(self) -> str:
        return f"raw_prefix({self.prefix!r})"


def raw_prefix(prefix: bytes) -> RawPrefix:
    """Match messages whose raw payload starts with ``prefix``."""
    return RawPrefix(prefix)


# --- combinators --------------------------------------------------------------


class AllOf(Matcher):
    """Every part matches (``a & b``); evaluation stops at the first miss."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Callable[[Any], Any]) -> None:
        self.parts = _flatten(AllOf, parts)

    def __call__(self, message: Message) -> bool:
        return all(part(message) for part in self.parts)

    def _key(self) -> tuple[Any, ...]:
        return self.parts

    def __repr__(self) -> str:
        return "(" + " & ".join(_describe(part) for part in self.parts) + ")"


class AnyOf(Matcher):
    """At least one part matches (``a | b``); stops at the first match."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Callable[[Any], Any]) -> None:
        self.parts = _flatten(AnyOf, parts)

    def __call__(self, message: Message) -> bool:
        return any(part(message) for part in self.parts)

    def _key(self) -> tuple[Any, ...]:
        return self.parts

    def __repr__(self) -> str:
        return "(" + " | ".join(_describe(part) for part in self.parts) + ")"


class Not(Matcher):
    """The part does not match (``~a``)."""

    __slots__ = ("part",)

    def __init__(self, part: Callable[[Any], Any]) -> None:
        self.part = part

    def __call__(self, message: Message) -> bool:
        return not self.part(message)

    def _key(self) -> tuple[Any, ...]:
        return (self.part,)

    def __repr__(self) -> str:
        return f"~{_describe(self.part)}"


def _flatten(
    kind: type[AllOf | AnyOf], parts: tuple[Callable[[Any], Any], ...]
) -> tuple[Callable[[Any], Any], ...]:
    flat: list[Callable[[Any], Any]] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return tuple(flat)


def _describe(matcher: Callable[[Any], Any]) -> str:
    if isinstance(matcher, Matcher):
        return repr(matcher)
    return getattr(matcher, "__qualname__", None) or repr(matcher)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a JSON value, for matcher equality."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    return value
