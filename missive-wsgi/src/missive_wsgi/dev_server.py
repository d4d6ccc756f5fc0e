"""A development server from the standard library's ``wsgiref``.

It serves each request in its own thread, so that concurrent senders behave
as under a threaded production server, but it is not built for production:
no timeouts against slow clients, no worker processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

logger = logging.getLogger(__name__)

#: How often the serving loop checks whether to stop, in seconds.
POLL_SECONDS = 0.5


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # Closing the server waits for the requests in flight, so that run()
    # returns (and after_processing runs) only once each is settled.
    daemon_threads = False
    block_on_close = True


class _LoggingHandler(WSGIRequestHandler):
    """Send the access log to :mod:`logging` rather than to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def serve(
    app: WSGIApplication, host: str, port: int, *, stopping: Callable[[], bool]
) -> None:
    """Serve ``app`` on ``host:port`` until ``stopping()`` is true."""
    with make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_LoggingHandler
    ) as server:
        server.timeout = POLL_SECONDS
        bound_host, bound_port = server.server_address[:2]
        logger.warning(
            "serving on http://%s:%s/ with the development server; use a "
            "production WSGI server (gunicorn, uWSGI, waitress) in production",
            bound_host,
            bound_port,
        )
        while not stopping():
            server.handle_request()
    logger.info("development server stopped")
