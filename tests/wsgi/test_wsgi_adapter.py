"""WSGIAdapter called directly with WSGI environs: answers, refusals, attributes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from wsgi_testing import call, make_environ

from missive import HandlingContext, JSONMessage, Processor, RawMessage
from missive.dlq.memory import MemoryDLQ
from missive_wsgi import StandardWebhooksSignature, WSGIAdapter

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def received() -> list[JSONMessage]:
    return []


@pytest.fixture
def processor(received: list[JSONMessage]) -> Processor[JSONMessage]:
    """Acks, nacks or raises as the message's "action" says."""
    processor: Processor[JSONMessage] = Processor()

    @processor.handle_for(lambda message: "action" in message.get_json())
    def act(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        received.append(message)
        action = message.get_json()["action"]
        if action == "ack":
            ctx.ack()
        elif action == "nack":
            ctx.nack()
        else:
            raise RuntimeError(f"handler failed on purpose: {action}")

    return processor


@pytest.fixture
def adapter(
    processor: Processor[JSONMessage],
) -> Iterator[WSGIAdapter[JSONMessage]]:
    processor.set_dlq(MemoryDLQ())
    adapter = WSGIAdapter(JSONMessage, processor)
    yield adapter
    adapter.close()


def post(body: bytes, **kwargs: Any) -> dict[str, Any]:
    return make_environ("POST", "/", body, **kwargs)


# What became of the message is the answer.


def test_acked_message_answers_200_ack(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    response = call(adapter.app, post(b'{"action": "ack"}'))

    assert response.status == 200
    assert response.body == b'{"result": "ack"}'
    assert response.headers["Content-Type"] == "application/json"
    assert [m.raw_data for m in received] == [b'{"action": "ack"}']


def test_nacked_message_answers_500_nack_with_retry_after(
    adapter: WSGIAdapter[JSONMessage],
) -> None:
    response = call(adapter.app, post(b'{"action": "nack"}'))

    assert response.status == 500
    assert response.body == b'{"result": "nack"}'
    assert response.headers["Retry-After"] == "5"


def test_retry_after_is_configurable(processor: Processor[JSONMessage]) -> None:
    adapter = WSGIAdapter(JSONMessage, processor, retry_after=30)

    response = call(adapter, post(b'{"action": "nack"}'))

    assert response.headers["Retry-After"] == "30"
    adapter.close()


def test_handler_exception_dead_letters_and_answers_200(
    adapter: WSGIAdapter[JSONMessage], processor: Processor[JSONMessage]
) -> None:
    response = call(adapter.app, post(b'{"action": "explode"}'))

    assert response.status == 200
    assert response.json() == {"result": "dead-lettered"}
    assert processor.dlq is not None
    [(message, reason)] = processor.dlq.values()
    assert message.raw_data == b'{"action": "explode"}'
    assert "explode" in reason


def test_undecodable_payload_follows_the_dlq_policy(
    adapter: WSGIAdapter[JSONMessage],
    processor: Processor[JSONMessage],
    received: list[JSONMessage],
) -> None:
    response = call(adapter.app, post(b"{not json"))

    assert response.status == 200
    assert response.json() == {"result": "dead-lettered"}
    assert processor.dlq is not None
    [(_, reason)] = processor.dlq.values()
    assert reason.startswith("could not decode message")
    assert received == []


def test_handler_exception_without_dlq_answers_500_and_logs_traceback(
    processor: Processor[JSONMessage], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)

    with caplog.at_level(logging.ERROR, logger="missive_wsgi"):
        failed = call(adapter, post(b'{"action": "explode"}'))
    after = call(adapter, post(b'{"action": "ack"}'))

    assert failed.status == 500
    assert failed.json() == {"result": "error"}
    assert "Retry-After" in failed.headers
    [record] = [r for r in caplog.records if r.name == "missive_wsgi.adapter"]
    assert record.exc_info is not None
    assert "handler failed on purpose" in str(record.exc_info[1])
    assert after.status == 200
    adapter.close()


class _BrokenDLQ(MutableMapping[bytes, Any]):
    def __setitem__(self, key: bytes, value: Any) -> None:
        raise OSError("disk full")

    def __getitem__(self, key: bytes) -> Any:
        raise KeyError(key)

    def __delitem__(self, key: bytes) -> None:
        raise KeyError(key)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_dlq_write_failure_answers_503_so_the_sender_retries(
    processor: Processor[JSONMessage],
) -> None:
    processor.set_dlq(_BrokenDLQ())
    adapter = WSGIAdapter(JSONMessage, processor)

    response = call(adapter, post(b'{"action": "explode"}'))

    assert response.status == 503
    assert response.json() == {"result": "error"}
    assert "Retry-After" in response.headers
    adapter.close()


def test_adapter_object_and_app_are_the_same_application(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    via_object = call(adapter, post(b'{"action": "ack"}'))
    via_app = call(adapter.app, post(b'{"action": "ack"}'))

    assert via_object == via_app
    assert len(received) == 2


# Requests that are not messages never reach a handler.


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_method_on_the_path_is_405_with_allow(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage], method: str
) -> None:
    response = call(adapter.app, make_environ(method, "/", b'{"action": "ack"}'))

    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert received == []


def test_post_on_healthz_is_405_allowing_get(adapter: WSGIAdapter[JSONMessage]) -> None:
    response = call(adapter.app, make_environ("POST", "/healthz", b"{}"))

    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_unknown_path_is_404(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    response = call(adapter.app, make_environ("POST", "/other", b'{"action": "ack"}'))

    assert response.status == 404
    assert received == []


def test_configured_path_receives_messages_and_root_is_404(
    processor: Processor[JSONMessage], received: list[JSONMessage]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor, path="/hooks/orders")

    at_path = call(adapter, make_environ("POST", "/hooks/orders", b'{"action": "ack"}'))
    at_root = call(adapter, make_environ("POST", "/", b'{"action": "ack"}'))

    assert (at_path.status, at_root.status) == (200, 404)
    assert len(received) == 1
    adapter.close()


def test_empty_path_info_is_the_root(adapter: WSGIAdapter[JSONMessage]) -> None:
    response = call(adapter.app, make_environ("POST", "", b'{"action": "ack"}'))

    assert response.status == 200


def test_content_length_over_the_limit_is_413_before_reading(
    processor: Processor[JSONMessage], received: list[JSONMessage]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor, max_body_bytes=100)
    environ = post(b'{"action": "ack"}' + b" " * 200)

    response = call(adapter, environ)

    assert response.status == 413
    assert environ["wsgi.input"].bytes_read == 0
    assert received == []
    adapter.close()


def test_body_of_exactly_the_limit_is_accepted(
    processor: Processor[JSONMessage],
) -> None:
    body = b'{"action": "ack"}'
    adapter = WSGIAdapter(JSONMessage, processor, max_body_bytes=len(body))

    response = call(adapter, post(body))

    assert response.status == 200
    adapter.close()


def test_terminated_body_without_length_over_the_limit_is_413(
    processor: Processor[JSONMessage], received: list[JSONMessage]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor, max_body_bytes=100)
    environ = post(
        b'{"action": "ack"}' + b" " * 10_000,
        content_length=None,
        **{"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )

    response = call(adapter, environ)

    assert response.status == 413
    assert environ["wsgi.input"].bytes_read <= 101
    assert received == []
    adapter.close()


def test_terminated_body_without_length_under_the_limit_is_processed(
    adapter: WSGIAdapter[JSONMessage],
) -> None:
    environ = post(
        b'{"action": "ack"}',
        content_length=None,
        **{"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )

    response = call(adapter.app, environ)

    assert response.status == 200


def test_chunked_body_the_server_does_not_terminate_is_411(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    environ = post(
        b'{"action": "ack"}',
        content_length=None,
        HTTP_TRANSFER_ENCODING="chunked",
    )

    response = call(adapter.app, environ)

    assert response.status == 411
    assert environ["wsgi.input"].bytes_read == 0
    assert received == []


def test_body_past_a_lying_content_length_is_never_read(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    environ = post(b'{"action": "ack"}' + b"x" * 1_000_000, content_length="17")

    response = call(adapter.app, environ)

    assert response.status == 200
    assert environ["wsgi.input"].bytes_read == 17
    assert received[0].raw_data == b'{"action": "ack"}'


def test_lying_content_length_over_the_limit_with_a_short_body_is_413(
    adapter: WSGIAdapter[JSONMessage],
) -> None:
    environ = post(b'{"action": "ack"}', content_length=str(50 * 1024 * 1024))

    response = call(adapter.app, environ)

    assert response.status == 413
    assert environ["wsgi.input"].bytes_read == 0


def test_body_shorter_than_its_content_length_is_400(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    response = call(adapter.app, post(b'{"action": "ack"}', content_length="500"))

    assert response.status == 400
    assert received == []


@pytest.mark.parametrize("length", ["abc", "-1", "+17", " 17", "1_7"])
def test_malformed_content_length_is_400(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage], length: str
) -> None:
    response = call(adapter.app, post(b'{"action": "ack"}', content_length=length))

    assert response.status == 400
    assert received == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/json"])
def test_other_content_type_is_415_for_a_json_message(
    adapter: WSGIAdapter[JSONMessage],
    received: list[JSONMessage],
    content_type: str | None,
) -> None:
    environ = post(b'{"action": "ack"}', content_type=content_type)

    response = call(adapter.app, environ)

    assert response.status == 415
    assert environ["wsgi.input"].bytes_read == 0
    assert received == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/cloudevents+json",
        None,
    ],
)
def test_json_content_types_are_accepted(
    adapter: WSGIAdapter[JSONMessage], content_type: str | None
) -> None:
    response = call(adapter.app, post(b'{"action": "ack"}', content_type=content_type))

    assert response.status == 200


def test_raw_messages_accept_any_content_type() -> None:
    processor: Processor[RawMessage] = Processor()
    processor.handle_for(lambda message: True)(lambda message, ctx: ctx.ack())
    adapter = WSGIAdapter(RawMessage, processor)

    response = call(adapter, post(b"\x00\x01", content_type="application/octet-stream"))

    assert response.status == 200
    adapter.close()


def test_bad_signature_is_401_with_a_generic_body_and_a_warning(
    processor: Processor[JSONMessage],
    received: list[JSONMessage],
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = WSGIAdapter(
        JSONMessage, processor, signature=StandardWebhooksSignature(SECRET)
    )
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1",
        "webhook-signature": "v1,AAAA",
    }

    with caplog.at_level(logging.WARNING, logger="missive_wsgi"):
        response = call(adapter, post(b'{"action": "ack"}', headers=headers))

    assert response.status == 401
    assert response.json() == {"error": "unauthorized"}
    assert received == []
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "signature" in record.getMessage()
    assert SECRET not in record.getMessage()
    assert SECRET.removeprefix("whsec_") not in record.getMessage()
    adapter.close()


def test_good_signature_is_processed(processor: Processor[JSONMessage]) -> None:
    scheme = StandardWebhooksSignature(SECRET)
    adapter = WSGIAdapter(JSONMessage, processor, signature=scheme)
    body = b'{"action": "ack"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": scheme.sign("msg_1", now, body),
    }

    response = call(adapter, post(body, headers=headers))

    assert response.status == 200
    adapter.close()


# What a handler sees of the request.


def test_message_attributes_carry_path_headers_and_transport_id(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    headers = {"webhook-id": "msg_2KWPBgLl", "x-github-event": "push"}

    call(adapter.app, post(b'{"action": "ack"}', headers=headers, SCRIPT_NAME="/app"))

    attributes = received[0].attributes
    assert attributes["transport_id"] == "msg_2KWPBgLl"
    assert attributes["path"] == "/app/"
    assert attributes["content_type"] == "application/json"
    assert attributes["headers"]["x-github-event"] == "push"


def test_github_delivery_is_the_transport_id(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    headers = {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}

    call(adapter.app, post(b'{"action": "ack"}', headers=headers))

    assert received[0].attributes["transport_id"].startswith("72d3162e")


def test_message_ids_are_generated_not_taken_from_headers(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    headers = {"webhook-id": "same"}

    call(adapter.app, post(b'{"action": "ack"}', headers=headers))
    call(adapter.app, post(b'{"action": "ack"}', headers=headers))

    assert received[0].message_id != received[1].message_id
    assert b"same" not in received[0].message_id


# Health check.


def test_healthz_is_200_while_serving(adapter: WSGIAdapter[JSONMessage]) -> None:
    response = call(adapter.app, make_environ("GET", "/healthz"))

    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_healthz_head_has_no_body(adapter: WSGIAdapter[JSONMessage]) -> None:
    response = call(adapter.app, make_environ("HEAD", "/healthz"))

    assert response.status == 200
    assert response.body == b""


def test_healthz_is_503_while_draining_and_messages_are_still_processed(
    adapter: WSGIAdapter[JSONMessage],
) -> None:
    adapter.stop()

    health = call(adapter.app, make_environ("GET", "/healthz"))
    message = call(adapter.app, post(b'{"action": "ack"}'))

    assert health.status == 503
    assert health.json() == {"status": "draining"}
    assert message.status == 200


def test_after_close_healthz_and_posts_are_503(
    adapter: WSGIAdapter[JSONMessage], received: list[JSONMessage]
) -> None:
    call(adapter.app, post(b'{"action": "ack"}'))
    adapter.close()

    health = call(adapter.app, make_environ("GET", "/healthz"))
    message = call(adapter.app, post(b'{"action": "ack"}'))

    assert (health.status, message.status) == (503, 503)
    assert len(received) == 1


def test_configured_healthz_path(processor: Processor[JSONMessage]) -> None:
    adapter = WSGIAdapter(JSONMessage, processor, healthz_path="/ready")

    ready = call(adapter, make_environ("GET", "/ready"))
    default = call(adapter, make_environ("GET", "/healthz"))

    assert (ready.status, default.status) == (200, 404)
    adapter.close()


# Threads.


def test_concurrent_requests_each_get_their_own_outcome(
    adapter: WSGIAdapter[JSONMessage],
) -> None:
    actions = ["ack", "nack", "explode"] * 17
    barrier = threading.Barrier(len(actions), timeout=10)
    answers: dict[int, tuple[int, bytes]] = {}

    def send(index: int, action: str) -> None:
        barrier.wait()
        body = b'{"action": "%s", "n": %d}' % (action.encode(), index)
        response = call(adapter.app, post(body))
        answers[index] = (response.status, response.body)

    threads = [
        threading.Thread(target=send, args=(i, a)) for i, a in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    expected = {
        "ack": (200, b'{"result": "ack"}'),
        "nack": (500, b'{"result": "nack"}'),
        "explode": (200, b'{"result": "dead-lettered"}'),
    }
    assert answers == {i: expected[a] for i, a in enumerate(actions)}


# Options.


def test_path_and_healthz_path_must_differ(processor: Processor[JSONMessage]) -> None:
    with pytest.raises(ValueError, match="both"):
        WSGIAdapter(JSONMessage, processor, path="/x", healthz_path="/x")


def test_paths_must_be_absolute(processor: Processor[JSONMessage]) -> None:
    with pytest.raises(ValueError, match="start with"):
        WSGIAdapter(JSONMessage, processor, path="hooks")


def test_from_options_parses_numbers_and_refuses_unknown_options(
    processor: Processor[JSONMessage],
) -> None:
    adapter = WSGIAdapter.from_options(
        JSONMessage, processor, {"max_body_bytes": "10", "path": "/in", "port": "9"}
    )

    assert (adapter.max_body_bytes, adapter.path) == (10, "/in")
    with pytest.raises(TypeError, match="unknown option"):
        WSGIAdapter.from_options(JSONMessage, processor, {"colour": "red"})
