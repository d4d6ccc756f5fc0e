"""The distribution as installed: entry points, import paths, CLI options."""

from __future__ import annotations

import subprocess
import sys

import pytest
from redis_testing import HERE

import missive.adapters
from missive import Processor, RawMessage
from missive_redis import RedisPubSubAdapter, RedisStreamAdapter
from missive_redis._connection import Backoff, redact, resolve_url


def test_load_by_name_returns_both_adapters() -> None:
    assert missive.adapters.load("redis") is RedisPubSubAdapter
    assert missive.adapters.load("redis-streams") is RedisStreamAdapter


def test_names_lists_both_adapters_from_metadata() -> None:
    names = missive.adapters.names()

    assert "redis" in names
    assert "redis-streams" in names


def test_import_path_of_0_8_1_still_works() -> None:
    from missive.adapters.redis import (  # type: ignore[import-not-found]
        RedisPubSubAdapter as Legacy,
    )
    from missive.adapters.redis import RedisStreamAdapter as Streams

    assert Legacy is RedisPubSubAdapter
    assert Streams is RedisStreamAdapter


def test_core_import_does_not_import_redis() -> None:
    code = "import sys, missive, missive.adapters; print('redis' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


def test_pubsub_from_options_parses_lists_and_numbers() -> None:
    adapter = RedisPubSubAdapter.from_options(
        RawMessage,
        Processor(),
        {
            "channels": "orders, invoices",
            "patterns": "audit.*",
            "health_check_interval": "2.5",
            "url": "redis://127.0.0.1:6399/3",
        },
    )

    assert adapter.channels == ["orders", "invoices"]
    assert adapter.patterns == ["audit.*"]
    assert adapter.health_check_interval == 2.5
    assert adapter.url == "redis://127.0.0.1:6399/3"


def test_streams_from_options_parses_numbers_and_none() -> None:
    adapter = RedisStreamAdapter.from_options(
        RawMessage,
        Processor(),
        {
            "streams": "a,b",
            "group": "workers",
            "consumer": "w-1",
            "batch_size": "25",
            "max_deliveries": "none",
            "claim_idle_ms": "1500",
            "payload_field": "body",
        },
    )

    assert adapter.streams == ["a", "b"]
    assert (adapter.group, adapter.consumer) == ("workers", "w-1")
    assert adapter.batch_size == 25
    assert adapter.max_deliveries is None
    assert adapter.claim_idle_ms == 1500
    assert adapter.claim_interval == 0.75
    assert adapter.payload_field == b"body"


@pytest.mark.parametrize(
    ("cls", "options", "complaint"),
    [
        (RedisPubSubAdapter, {"channels": "a", "colour": "red"}, "unknown option"),
        (RedisPubSubAdapter, {}, "at least one channel"),
        (RedisPubSubAdapter, {"channels": "a", "read_timeout": "soon"}, "invalid"),
        (RedisStreamAdapter, {"streams": "s"}, "missing required option(s): group"),
        (RedisStreamAdapter, {"streams": "s", "group": "g", "batch_size": "0"}, ">= 1"),
        (RedisStreamAdapter, {"streams": "s", "group": "g", "tls": "1"}, "unknown"),
        (RedisStreamAdapter, {"streams": "s", "group": "g", "url": "http://x"}, "URL"),
    ],
)
def test_from_options_rejects_bad_options_with_type_error(
    cls: type[RedisPubSubAdapter[RawMessage]] | type[RedisStreamAdapter[RawMessage]],
    options: dict[str, str],
    complaint: str,
) -> None:
    with pytest.raises(
        TypeError, match=complaint.replace("(", r"\(").replace(")", r"\)")
    ):
        cls.from_options(RawMessage, Processor(), options)


def test_url_defaults_to_environment_then_localhost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MISSIVE_REDIS_URL", raising=False)
    assert resolve_url(None) == "redis://localhost:6379/0"

    monkeypatch.setenv("MISSIVE_REDIS_URL", "unix:///run/redis.sock?db=2")
    assert resolve_url(None) == "unix:///run/redis.sock?db=2"
    assert resolve_url("rediss://cache:6380/0") == "rediss://cache:6380/0"


def test_redact_hides_passwords() -> None:
    assert redact("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.1, 1.0)

    delays = [backoff.next_delay() for _ in range(8)]

    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    assert len(set(delays)) > 1
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_cli_reports_a_bad_option_in_one_line() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "missive",
            "run",
            "redis_test_app:streams_processor",
            "--adapter",
            "redis-streams",
            "-o",
            "streams=s",
            "-o",
            "group=g",
            "-o",
            "batch-size=many",
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(HERE), "MISSIVE_TEST_REDIS_URL": "redis://127.0.0.1:1"},
    )

    assert result.returncode == 1
    assert "bad options for adapter 'redis-streams'" in result.stderr
    assert "batch_size='many' is invalid" in result.stderr
