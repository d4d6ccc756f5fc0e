"""Reading a request body without ever holding more than the limit.

A WSGI application must not read past ``CONTENT_LENGTH``, and a sender may
announce any length, or none (``Transfer-Encoding: chunked``).  The rules:

- ``Content-Length`` present: over the limit is refused before a byte is
  read; otherwise exactly that many bytes are read, and a body that ends
  early is an error.  Bytes beyond the announced length are never read.
- no ``Content-Length`` and a server that marks the input as terminated
  (``wsgi.input_terminated``, as gunicorn does for chunked bodies): read to
  the end, but stop at one byte past the limit.
- no ``Content-Length`` and a chunked body the server does not terminate:
  the end cannot be found safely, so the request is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

#: How much is asked of ``wsgi.input`` per read.
READ_CHUNK_BYTES = 64 * 1024


class BodyError(Exception):
    """The body cannot be read; :attr:`status` is the HTTP status to answer."""

    status = "400 Bad Request"


class BodyTooLarge(BodyError):
    """The body is, or announces that it is, larger than the limit."""

    status = "413 Content Too Large"


class LengthRequired(BodyError):
    """A chunked body the server does not terminate: its end is unknown."""

    status = "411 Length Required"


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """Return the request body, reading at most ``limit + 1`` bytes.

    :raises BodyTooLarge: the body is longer than ``limit`` bytes.
    :raises LengthRequired: the length cannot be known safely.
    :raises BodyError: ``Content-Length`` is invalid, or the body is shorter
        than it said.
    """
    stream: IO[bytes] = environ["wsgi.input"]
    announced = environ.get("CONTENT_LENGTH")
    if announced:
        length = _content_length(announced)
        if length > limit:
            raise BodyTooLarge(f"Content-Length {length} is over {limit}")
        body = _read_at_most(stream, length)
        if len(body) < length:
            raise BodyError(f"body ended after {len(body)} of {length} bytes")
        return body

    if environ.get("wsgi.input_terminated"):
        body = _read_at_most(stream, limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"body is over {limit} bytes")
        return body
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() not in ("", "identity"):
        raise LengthRequired("a chunked body needs a server that ends wsgi.input")
    return b""


def _content_length(value: str) -> int:
    # int() would also take "+5", " 5" or "5_000": RFC 9110 allows digits only.
    if not value.isdigit() or not value.isascii():
        raise BodyError("Content-Length is not a number")
    return int(value)


def _read_at_most(stream: IO[bytes], size: int) -> bytes:
    """Read until ``size`` bytes or the end of the stream, whichever first."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
