"""Fixtures for the WSGI adapter's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wsgi_testing import Gunicorn, GunicornFactory, start_gunicorn


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[GunicornFactory]:
    """Start gunicorns in this test's directory; each is stopped at teardown."""
    servers: list[Gunicorn] = []

    def start(app: str = "adapter", **options: Any) -> Gunicorn:
        server = start_gunicorn(app, tmp_path, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if not server.stopped:
            server.terminate()
