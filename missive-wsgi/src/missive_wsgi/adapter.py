"""The WSGI adapter: a processor served over HTTP, one message per POST.

A message enters in :meth:`WSGIAdapter.__call__`: the request is checked
(method, path, size, content type, signature), its body becomes a message,
:meth:`ProcessingContext.handle` decides its outcome, and the outcome is the
HTTP answer.  Nothing is shared between requests but the processing context,
which is safe for threads.

The processing context is per process.  It starts at the first request a
process serves, so that under a pre-forking server (gunicorn, uWSGI) every
worker runs ``before_processing`` once, after the fork, and never reuses a
context its parent started.  It ends, running ``after_processing``, at
:meth:`WSGIAdapter.close` or when the process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from missive.adapters import RunnableAdapter
from missive.contexts import Outcome
from missive.errors import DeadLetterError
from missive.messages import Message
from missive_wsgi.request_body import BodyError, read_body
from missive_wsgi.signatures import InvalidSignature

if TYPE_CHECKING:
    from types import FrameType
    from typing import Self
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from missive.contexts import ProcessingContext
    from missive.processor import Processor
    from missive_wsgi.signatures import SignatureScheme

M = TypeVar("M", bound=Message)

logger = logging.getLogger(__name__)

#: The default largest body accepted, in bytes: 1 MiB.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: How long to wait before starting the processing context again after its
#: ``before_processing`` hooks failed, in seconds.
START_RETRY_SECONDS = 1.0

_Headers = list[tuple[str, str]]
_Response = tuple[str, _Headers, bytes]


def _json_response(status: str, body: bytes, *extra: tuple[str, str]) -> _Response:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return status, headers, body


# Every answer is built once: a request only copies the header list.
_ACK = _json_response("200 OK", b'{"result": "ack"}')
_DEAD_LETTERED = _json_response("200 OK", b'{"result": "dead-lettered"}')
_HEALTHY = _json_response("200 OK", b'{"status": "ok"}')
_NOT_FOUND = _json_response("404 Not Found", b'{"error": "not found"}')
_UNAUTHORIZED = _json_response("401 Unauthorized", b'{"error": "unauthorized"}')
_UNSUPPORTED_TYPE = _json_response(
    "415 Unsupported Media Type", b'{"error": "unsupported content type"}'
)


class _ProcessState(Generic[M]):
    """The processing context of one process, and whether it has ended."""

    __slots__ = ("closed", "context", "ctx", "pid", "retry_at")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.context: AbstractContextManager[ProcessingContext[M]] | None = None
        self.ctx: ProcessingContext[M] | None = None
        self.closed = False
        self.retry_at = 0.0


# Guards starting and closing processing contexts.  A fork may copy it while
# another thread holds it, so the child gets a fresh one.
_lifecycle_lock = threading.Lock()

# Every adapter of this process, for the fork handler.
_adapters: weakref.WeakSet[WSGIAdapter[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _lifecycle_lock
    _lifecycle_lock = threading.Lock()
    for adapter in list(_adapters):
        adapter._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


class WSGIAdapter(RunnableAdapter[M]):
    """Serve a processor as a WSGI application: each POST body is a message.

    The adapter is the application: pass it, or :attr:`app`, to any WSGI
    server (``gunicorn 'myapp:adapter'``).  The answer to a POST on
    :attr:`path` says what became of the message:

    - acked: ``200`` ``{"result": "ack"}``;
    - nacked: ``500`` ``{"result": "nack"}`` with ``Retry-After``, so that
      the sender delivers it again;
    - dead-lettered (stored in the processor's DLQ, and so acked): ``200``
      ``{"result": "dead-lettered"}``: the sender must not retry;
    - the handler raised and no DLQ is set: ``500`` ``{"result": "error"}``
      with ``Retry-After``; the traceback is logged;
    - storing in the DLQ failed: ``503`` ``{"result": "error"}`` with
      ``Retry-After``: the message was not kept, the sender must retry.

    Requests that are not a message are refused before any handler runs:
    ``405`` (with ``Allow``) for another method, ``404`` for another path,
    ``413`` for a body over ``max_body_bytes`` (never read past the limit),
    ``411`` for a chunked body the server does not terminate, ``400`` for a
    body shorter than its ``Content-Length``, ``415`` when the message class
    declares a ``content_type`` and the request says another (a request
    without ``Content-Type`` is accepted), ``401`` when a signature scheme
    is set and the signature does not verify.  A body the message class
    cannot decode follows the processor's DLQ policy, as on any transport.

    ``GET`` on :attr:`healthz_path` answers ``200`` while serving and
    ``503`` once the adapter is draining (after SIGTERM, :meth:`stop` or
    :meth:`close`), so that a load balancer stops sending to this worker;
    messages still arriving meanwhile are processed.

    Each message has the attributes ``path``, ``content_type`` (``None``
    without the header), ``headers`` (lower-case names, for a matcher to
    route on, such as ``x-github-event``) and, when the sender gave one,
    ``transport_id``: ``webhook-id``, or ``X-GitHub-Delivery``.  The message
    id itself is generated: a header chosen by the sender never becomes a
    DLQ key.

    Thread safety: requests may be served by many threads at once; each
    outcome belongs to its own request.

    :param message_cls: the message class built from each body.
    :param processor: the processor that handles the messages.
    :param path: the path that accepts messages.
    :param healthz_path: the path of the health check.
    :param max_body_bytes: the largest body accepted.
    :param signature: a signature scheme, such as
        :class:`~missive_wsgi.signatures.StandardWebhooksSignature`; ``None``
        (the default) accepts unsigned requests.
    :param retry_after: the ``Retry-After`` value, in seconds, of the answers
        that ask the sender to retry.
    :param drain_on_sigterm: when the process's SIGTERM handler is the
        server's own (as in a gunicorn worker), wrap it so that SIGTERM
        starts draining before the server shuts down.
    :raises ValueError: an option is out of range, or the two paths are
        the same.
    """

    cli_options = ("host", "port", "path", "healthz_path", "max_body_bytes")

    #: The WSGI application; the adapter itself is the same application.
    app: WSGIApplication

    _DEFAULT_ADDRESS: ClassVar[tuple[str, int]] = ("127.0.0.1", 8000)

    def __init__(
        self,
        message_cls: type[M],
        processor: Processor[M],
        *,
        path: str = "/",
        healthz_path: str = "/healthz",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        signature: SignatureScheme | None = None,
        retry_after: int = 5,
        drain_on_sigterm: bool = True,
    ) -> None:
        super().__init__(message_cls, processor)
        if not path.startswith("/") or not healthz_path.startswith("/"):
            raise ValueError("path and healthz_path must start with '/'")
        if path == healthz_path:
            raise ValueError(f"path and healthz_path are both {path!r}")
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes cannot be negative")
        if retry_after < 0:
            raise ValueError("retry_after cannot be negative")
        self.path = path
        self.healthz_path = healthz_path
        self.max_body_bytes = max_body_bytes
        self.signature = signature
        self.app = self.__call__
        self._content_type = message_cls.content_type
        self._state: _ProcessState[M] = _ProcessState(os.getpid())
        self._atexit_pid: int | None = None
        self._address = self._DEFAULT_ADDRESS
        self._server_sigterm: Callable[[int, FrameType | None], Any] | None = None
        self._build_answers(str(retry_after))
        _adapters.add(self)
        if drain_on_sigterm:
            self._wrap_sigterm_handler()

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> Self:
        """Build from ``missive run -o key=value`` options; ``host`` and
        ``port`` say where :meth:`run` listens.
        """
        unknown = set(options) - set(cls.cli_options)
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(cls.cli_options)}"
            )
        adapter = cls(
            message_cls,
            processor,
            path=options.get("path", "/"),
            healthz_path=options.get("healthz_path", "/healthz"),
            max_body_bytes=int(options.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
        )
        host, port = cls._DEFAULT_ADDRESS
        adapter._address = (options.get("host", host), int(options.get("port", port)))
        return adapter

    # The WSGI application.

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (the WSGI application interface)."""
        path = environ.get("PATH_INFO") or "/"
        method = environ["REQUEST_METHOD"]
        if path == self.path:
            if method != "POST":
                return _answer(start_response, self._post_only)
            return _answer(start_response, self._receive(environ))
        if path == self.healthz_path:
            if method not in ("GET", "HEAD"):
                return _answer(start_response, self._get_only)
            response = self._health()
            if method == "HEAD":
                response = (response[0], response[1], b"")
            return _answer(start_response, response)
        return _answer(start_response, _NOT_FOUND)

    def _receive(self, environ: WSGIEnvironment) -> _Response:
        """Turn a POST into a message, process it, and return the answer."""
        # Refusals that need no body come first, then the bounded read.
        if self._content_type is not None and not _accepts(
            self._content_type, environ.get("CONTENT_TYPE")
        ):
            return _UNSUPPORTED_TYPE
        try:
            body = read_body(environ, self.max_body_bytes)
        except BodyError as exc:
            logger.info("refused request to %s: %s", self.path, exc)
            return _json_response(exc.status, b'{"error": "%s"}' % _reason(exc))

        if self.signature is not None:
            try:
                self.signature.verify(environ, body)
            except InvalidSignature as exc:
                logger.warning(
                    "refused request to %s from %s: invalid signature: %s",
                    self.path,
                    environ.get("REMOTE_ADDR", "?"),
                    exc,
                )
                return _UNAUTHORIZED

        ctx = self._processing_context()
        if ctx is None:
            return self._unavailable
        message = self.message_cls(body, attributes=_attributes(environ, self.path))
        try:
            outcome = ctx.handle(message)
        except DeadLetterError:
            # Core logged why; the sender keeps the message and retries.
            return self._dlq_failed
        except Exception:
            logger.exception(
                "processing message %r raised and no DLQ is set; answering 500",
                message.message_id,
            )
            return self._failed

        if outcome is Outcome.ACKED:
            return _ACK
        if outcome is Outcome.NACKED:
            return self._nack
        if outcome is Outcome.DEAD_LETTERED:
            return _DEAD_LETTERED
        return self._failed

    def _health(self) -> _Response:
        ctx = self._processing_context()
        if self.stopping:
            return self._draining
        if ctx is None:
            return self._unavailable
        return _HEALTHY

    # Acks and nacks are the HTTP answer, built from the outcome.

    def ack(self, message: M) -> None:
        """Nothing to do: the answer to the request carries the ack."""

    def nack(self, message: M) -> None:
        """Nothing to do: the answer to the request carries the nack."""
        logger.debug(
            "message %r nacked; asking the sender to retry", message.message_id
        )

    # The processing context of this process.

    def _processing_context(self) -> ProcessingContext[M] | None:
        """Return this process's context, starting it on first use.

        ``None`` means no message can be processed: the adapter was closed,
        or the ``before_processing`` hooks failed (retried after a pause).
        """
        state = self._state
        if state.ctx is not None and state.pid == os.getpid():
            return state.ctx
        with _lifecycle_lock:
            return self._start()

    def _start(self) -> ProcessingContext[M] | None:
        pid = os.getpid()
        state = self._state
        if state.pid != pid:
            # A fork that the at-fork handler did not see: one made by C
            # code rather than os.fork.
            self._forget_parent()
            state = self._state
        if state.ctx is not None:
            return state.ctx
        if state.closed or time.monotonic() < state.retry_at:
            return None

        context = self.processor.context(self.message_cls, self)
        try:
            ctx = context.__enter__()
        except Exception:
            logger.exception(
                "before_processing failed in process %d; answering 503, "
                "retrying in %g s",
                pid,
                START_RETRY_SECONDS,
            )
            state.retry_at = time.monotonic() + START_RETRY_SECONDS
            return None
        state.context, state.ctx = context, ctx
        if self._atexit_pid != pid:
            atexit.register(self._close_at_exit)
            self._atexit_pid = pid
        if threading.current_thread() is threading.main_thread():
            self._wrap_sigterm_handler()
        logger.info("%s serving %s in process %d", type(self).__name__, self.path, pid)
        return ctx

    def close(self) -> None:
        """Stop serving messages and run the ``after_processing`` hooks.

        From then on the health check answers 503, and so does a POST.  Safe
        to call more than once, and from any thread; the hooks run once per
        process whose context started.  Called on its own when the process
        exits.  Call it once the server stopped handing out requests: a
        request already running when it is called may finish after the hooks.
        """
        self.stop()
        with _lifecycle_lock:
            state = self._state
            if state.pid != os.getpid():
                self._forget_parent()
                state = self._state
            context = state.context
            state.context = state.ctx = None
            state.closed = True
        if context is not None:
            context.__exit__(None, None, None)
            logger.info("%s closed in process %d", type(self).__name__, os.getpid())

    def _forget_parent(self) -> None:
        """In a forked child: drop the parent's context without ending it.

        Its hooks belong to the parent (``Processor.context`` runs them only
        in the process that entered it); this process starts its own context
        at its first request.
        """
        self._state = _ProcessState(os.getpid())
        self.shutdown_handler.clear()

    def _close_at_exit(self) -> None:
        # Registered before a fork, this runs in the child too: only the
        # process that started a context ends it.
        if self._state.pid == os.getpid():
            self.close()

    def _wrap_sigterm_handler(self) -> None:
        """Start draining on SIGTERM, then let the server's handler run.

        Only a Python handler is wrapped: with the default action there is
        no server to drain, and signals can be set on the main thread only.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous) or getattr(previous, "__self__", None) is self:
            return
        self._server_sigterm = previous
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stop()
        if self._server_sigterm is not None:
            self._server_sigterm(signum, frame)

    # Local development.

    def run(self, host: str | None = None, port: int | None = None) -> None:
        """Serve on ``host:port`` with the standard library's WSGI server
        (``127.0.0.1:8000`` unless ``missive run -o`` said otherwise) until
        SIGINT, SIGTERM or :meth:`stop`.

        For local development only: run a WSGI server built for production
        (gunicorn, uWSGI, waitress) in production.
        """
        default_host, default_port = self._address
        self._address = (
            default_host if host is None else host,
            default_port if port is None else port,
        )
        super().run()

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        """Serve requests with ``wsgiref`` until a stop is requested."""
        from missive_wsgi.dev_server import serve

        with _lifecycle_lock:
            self._state = _ProcessState(os.getpid())
            self._state.ctx = processing_ctx
        try:
            serve(self, *self._address, stopping=lambda: self.stopping)
        finally:
            with _lifecycle_lock:
                self._state.ctx = None
                self._state.closed = True

    # Answers that depend on the options.

    def _build_answers(self, retry_after: str) -> None:
        retry = ("Retry-After", retry_after)
        self._nack = _json_response(
            "500 Internal Server Error", b'{"result": "nack"}', retry
        )
        self._failed = _json_response(
            "500 Internal Server Error", b'{"result": "error"}', retry
        )
        self._dlq_failed = _json_response(
            "503 Service Unavailable", b'{"result": "error"}', retry
        )
        self._unavailable = _json_response(
            "503 Service Unavailable", b'{"error": "unavailable"}', retry
        )
        self._draining = _json_response(
            "503 Service Unavailable", b'{"status": "draining"}', retry
        )
        self._post_only = _json_response(
            "405 Method Not Allowed",
            b'{"error": "method not allowed"}',
            ("Allow", "POST"),
        )
        self._get_only = _json_response(
            "405 Method Not Allowed",
            b'{"error": "method not allowed"}',
            ("Allow", "GET, HEAD"),
        )


def _answer(start_response: StartResponse, response: _Response) -> list[bytes]:
    status, headers, body = response
    start_response(status, list(headers))
    return [body]


def _accepts(declared: str, header: str | None) -> bool:
    """Whether a request's ``Content-Type`` is the declared media type.

    Parameters (``; charset=utf-8``) are ignored, and a structured syntax
    suffix counts: ``application/cloudevents+json`` is ``application/json``.
    """
    if not header:
        return True
    media = header.partition(";")[0].strip().lower()
    if media == declared:
        return True
    kind, _, subtype = declared.partition("/")
    request_kind, _, request_subtype = media.partition("/")
    return request_kind == kind and request_subtype.endswith("+" + subtype)


def _attributes(environ: WSGIEnvironment, path: str) -> dict[str, Any]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    attributes: dict[str, Any] = {
        "path": environ.get("SCRIPT_NAME", "") + path,
        "content_type": environ.get("CONTENT_TYPE") or None,
        "headers": headers,
    }
    transport_id = headers.get("webhook-id") or headers.get("x-github-delivery")
    if transport_id:
        attributes["transport_id"] = transport_id
    return attributes


def _reason(error: BodyError) -> bytes:
    return error.status.partition(" ")[2].lower().encode()
