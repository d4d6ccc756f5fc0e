"""What both adapters share: the server URL, reconnect backoff, CLI options."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

#: The URL used when neither the ``url`` argument nor the environment gives one.
DEFAULT_URL = "redis://localhost:6379/0"

#: The environment variable read when no ``url`` is passed.
URL_VARIABLE = "MISSIVE_REDIS_URL"

#: Errors after which an adapter drops its connection and makes it again.
CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def resolve_url(url: str | None) -> str:
    """Return ``url``, else ``$MISSIVE_REDIS_URL``, else the local default.

    :raises ValueError: the URL's scheme is not ``redis``, ``rediss`` or ``unix``.
    """
    resolved = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    scheme = resolved.partition("://")[0]
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"unsupported Redis URL {redact(resolved)!r}: "
            "use redis://, rediss:// or unix://"
        )
    return resolved


def redact(url: str) -> str:
    """Return ``url`` with any password replaced, for logs and errors."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}"


def connection_kwargs(
    *,
    client_name: str | None,
    read_timeout: float | None,
    connect_timeout: float,
    resp2: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for a connection pool that never retries by itself.

    The adapters own reconnection, so that they can log the gap, back off
    and recover what a lost reply may have carried; redis-py's own silent
    retries would hide all of that.  ``resp2`` pins the protocol version for
    code that reads raw frames; otherwise redis-py's default applies.
    """
    kwargs: dict[str, Any] = {
        "client_name": client_name,
        "socket_timeout": read_timeout,
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": 0,
        "retry": Retry(NoBackoff(), 0),
    }
    if resp2:
        kwargs["protocol"] = 2
    return kwargs


class Backoff:
    """Exponential reconnect delays with jitter, between two bounds.

    Each delay is drawn between half and all of ``min_delay * 2 ** attempt``,
    capped at ``max_delay``, so that many consumers cut off at once do not
    reconnect in step.

    :param min_delay: the first delay's upper bound, in seconds.
    :param max_delay: the largest delay, in seconds.
    """

    def __init__(self, min_delay: float, max_delay: float) -> None:
        if min_delay <= 0 or max_delay < min_delay:
            raise ValueError(
                "reconnect delays need 0 < reconnect_min_delay <= reconnect_max_delay"
            )
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.attempt = 0

    def next_delay(self) -> float:
        """Return how long to wait before the next attempt, and count it."""
        ceiling = min(self.max_delay, self.min_delay * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from the shortest delay, after a success."""
        self.attempt = 0


# --- missive run -o options -------------------------------------------------

OptionParser = Callable[[str], Any]


def parse_list(value: str) -> list[str]:
    """Parse a comma-separated list, ignoring blanks around items."""
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_int(value: str) -> int:
    return int(value)


def parse_float(value: str) -> float:
    return float(value)


def parse_optional_int(value: str) -> int | None:
    """Parse an integer, or ``none`` (any case) for no limit."""
    return None if value.strip().lower() in ("none", "") else int(value)


def parse_str(value: str) -> str:
    return value


def parse_options(
    options: Mapping[str, str],
    parsers: Mapping[str, OptionParser],
    *,
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """Turn ``missive run -o`` strings into constructor keyword arguments.

    :raises TypeError: an option is unknown, required but missing, or its
        value does not parse; the CLI reports it as a bad option.
    """
    unknown = set(options) - set(parsers)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(parsers))}"
        )
    missing = [name for name in required if name not in options]
    if missing:
        raise TypeError(f"missing required option(s): {', '.join(missing)}")
    parsed: dict[str, Any] = {}
    for name, value in options.items():
        try:
            parsed[name] = parsers[name](value)
        except ValueError as exc:
            raise TypeError(f"option {name}={value!r} is invalid: {exc}") from exc
    return parsed
