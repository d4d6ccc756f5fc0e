"""Fixtures of the reliability suite (issue 7).

Every Redis these tests use is a private ``redis-server`` on a free loopback
port, started by the tests: the suite restarts, kills, pauses and proxies
servers, and must never disturb a shared one.  Without the binary the tests
are skipped, or fail under ``MISSIVE_REQUIRE_REDIS=1``.

The suite runs in a reduced form by default; ``MISSIVE_RELIABILITY=full``
selects the issue's full counts.  Measured figures are written as JSON to
``$MISSIVE_RELIABILITY_REPORT``, by default ``reliability.json`` in pytest's
base temporary directory; ``report.py`` renders them as markdown.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The Redis tests' helpers (free ports, polling with a deadline) are shared.
_REDIS_TESTS = str(Path(__file__).resolve().parent.parent / "redis")
if _REDIS_TESTS not in sys.path:
    sys.path.insert(0, _REDIS_TESTS)

from reliability_testing import FIGURES, SCALE, Figures, PersistentRedis  # noqa: E402

REPORT_VARIABLE = "MISSIVE_RELIABILITY_REPORT"

_report_path: list[Path] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """This test's figures; they end up in the JSON report."""
    started = time.monotonic()
    found = Figures(request.node.name)
    yield found
    found["test_seconds"] = round(time.monotonic() - started, 2)


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("MISSIVE_REQUIRE_REDIS") == "1":
            pytest.fail("MISSIVE_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("RELIABILITY TESTS SKIPPED: they need the redis-server binary")
    return binary


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return _redis_binary()


@pytest.fixture(scope="session")
def shared_private_redis(redis_binary: str) -> Iterator[PersistentRedis]:
    """One private server for the tests that neither restart nor proxy it."""
    server = PersistentRedis(redis_binary, persistent=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_factory(redis_binary: str) -> Iterator[Any]:
    """Start private servers for one test; each is killed at teardown."""
    servers: list[PersistentRedis] = []

    def start(**options: Any) -> PersistentRedis:
        server = PersistentRedis(redis_binary, **options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


def pytest_configure(config: pytest.Config) -> None:
    FIGURES.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not FIGURES:
        return
    configured = os.environ.get(REPORT_VARIABLE)
    if configured:
        path = Path(configured)
    else:
        factory = getattr(session.config, "_tmp_path_factory", None)
        if factory is None:
            return
        path = factory.getbasetemp() / "reliability.json"
    document = {
        "scale": SCALE.name,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tests": FIGURES,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    _report_path[:] = [path]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _report_path:
        terminalreporter.write_line(
            f"reliability figures ({SCALE.name} form) written to {_report_path[0]}"
        )
