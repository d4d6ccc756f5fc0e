"""Fixtures of the Redis tests, which run against a real server.

Which server: ``MISSIVE_TEST_REDIS_URL`` when set; else 127.0.0.1:6379 when it
answers PING; else a private ``redis-server`` on a free loopback port, started
for the session, when the binary is installed.  Otherwise the tests are
skipped with the reason printed at the end of the run, unless
``MISSIVE_REQUIRE_REDIS=1``, which makes them fail instead.

Every test gets its own key prefix, and its keys are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_testing import RedisServer

DEFAULT_URL = "redis://127.0.0.1:6379/0"

_state: dict[str, Any] = {}


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _unavailable(reason: str) -> None:
    _state["unavailable"] = reason
    if os.environ.get("MISSIVE_REQUIRE_REDIS") == "1":
        pytest.fail(f"MISSIVE_REQUIRE_REDIS=1 but {reason}", pytrace=False)
    pytest.skip(f"REDIS TESTS SKIPPED: {reason}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the Redis server the tests use (see the module docstring)."""
    if "unavailable" in _state:
        _unavailable(_state["unavailable"])

    configured = os.environ.get("MISSIVE_TEST_REDIS_URL")
    if configured:
        if not _answers(configured):
            _unavailable(f"MISSIVE_TEST_REDIS_URL={configured} does not answer PING")
        _state["source"] = f"MISSIVE_TEST_REDIS_URL ({configured})"
        yield configured
        return

    if _answers(DEFAULT_URL):
        _state["source"] = f"the server already running at {DEFAULT_URL}"
        yield DEFAULT_URL
        return

    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable(
            "no MISSIVE_TEST_REDIS_URL, nothing answers on 127.0.0.1:6379 and "
            "redis-server is not installed"
        )
    server = RedisServer(binary)  # type: ignore[arg-type]
    server.start()
    _state["source"] = f"a private redis-server at {server.url}"
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"missive-test:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = list(redis_client.scan_iter(match=value + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("MISSIVE_REQUIRE_REDIS") == "1":
            pytest.fail("MISSIVE_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("REDIS TESTS SKIPPED: this test needs the redis-server binary")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if "unavailable" in _state:
        terminalreporter.section("Redis", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"REDIS TESTS SKIPPED: {_state['unavailable']}. Set "
            "MISSIVE_TEST_REDIS_URL, run a server on 127.0.0.1:6379 or install "
            "redis-server.",
            red=True,
        )
    elif "source" in _state:
        terminalreporter.write_line(f"Redis tests ran against {_state['source']}")
