"""Webhook signatures: proof that a request came from a sender holding the secret.

Both schemes are an HMAC-SHA256 over the raw request body, compared in
constant time:

- :class:`StandardWebhooksSignature`: the Standard Webhooks form, headers
  ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``; the id and
  timestamp are signed with the body, and a timestamp too far from now is
  refused, so a captured request cannot be replayed later.
- :class:`GitHubSignature`: GitHub's ``X-Hub-Signature-256: sha256=<hex>``.

Both accept several secrets, so that a secret can be rotated: deploy the new
one next to the old, switch the sender, then remove the old one.  Both can
also ``sign``, which is what a sender (or a test) needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from missive.errors import MissiveError

#: How far ``webhook-timestamp`` may be from now, either way, by default.
DEFAULT_TOLERANCE_SECONDS = 300.0

_WHSEC_PREFIX = "whsec_"


class InvalidSignature(MissiveError, ValueError):
    """A request's signature is missing, malformed, stale or wrong.

    The message says which, for the log; it never contains a secret.
    """


class SignatureScheme(Protocol):
    """What :class:`~missive_wsgi.WSGIAdapter` needs to check a request."""

    def verify(self, environ: Mapping[str, Any], body: bytes) -> None:
        """Return if the request is authentic, raise :class:`InvalidSignature`
        otherwise.

        :param environ: the request's WSGI environ, for its headers.
        :param body: the raw body, exactly as received.
        """


class StandardWebhooksSignature:
    """Verify the Standard Webhooks signature of a request.

    The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``;
    ``webhook-signature`` holds one or more space-separated ``v1,<base64>``
    entries, and one of them must match one of the secrets.  Entries of
    other versions are ignored.

    :param secrets: one secret or several (during a rotation).  A string is a
        ``whsec_`` secret: the prefix (optional) then the key in base64, as
        senders hand them out.  Bytes are used as the key as they are.
    :param tolerance: how many seconds ``webhook-timestamp`` may be from now,
        in the past or the future.
    :param clock: returns the current Unix time; for tests.
    :raises ValueError: no secret, or a string secret that is not base64.
    """

    def __init__(
        self,
        secrets: str | bytes | Iterable[str | bytes],
        *,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = tuple(_standard_webhooks_key(s) for s in _as_list(secrets))
        self.tolerance = tolerance
        self._clock = clock

    def verify(self, environ: Mapping[str, Any], body: bytes) -> None:
        """Check the request's headers and body against the secrets.

        :raises InvalidSignature: a header is missing or malformed, the
            timestamp is outside the tolerance, or no signature matches.
        """
        webhook_id = _header(environ, "HTTP_WEBHOOK_ID", "webhook-id")
        timestamp = _header(environ, "HTTP_WEBHOOK_TIMESTAMP", "webhook-timestamp")
        signatures = _header(environ, "HTTP_WEBHOOK_SIGNATURE", "webhook-signature")

        try:
            sent_at = int(timestamp)
        except ValueError:
            raise InvalidSignature("webhook-timestamp is not an integer") from None
        skew = self._clock() - sent_at
        if abs(skew) > self.tolerance:
            raise InvalidSignature(
                f"webhook-timestamp is {skew:+.0f} s from now, "
                f"beyond the tolerance of {self.tolerance:g} s"
            )

        # WSGI gives header values as latin-1 strings: that recovers the bytes.
        signed = b".".join(
            (webhook_id.encode("latin-1"), timestamp.encode("latin-1"), body)
        )
        expected = [
            hmac.new(key, signed, hashlib.sha256).digest() for key in self._keys
        ]
        for entry in signatures.split():
            version, _, encoded = entry.partition(",")
            if version != "v1":
                continue
            try:
                provided = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            if any(hmac.compare_digest(digest, provided) for digest in expected):
                return
        raise InvalidSignature("no webhook-signature entry matches a secret")

    def sign(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """Return the ``webhook-signature`` value for a request, with every
        secret, newest (first) first.
        """
        signed = b".".join((webhook_id.encode(), str(timestamp).encode(), body))
        return " ".join(
            "v1,"
            + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for key in self._keys
        )


class GitHubSignature:
    """Verify GitHub's ``X-Hub-Signature-256`` header: ``sha256=<hex>``.

    GitHub signs the body alone, with no timestamp: this does not protect
    against a request being replayed.  ``X-GitHub-Delivery`` identifies each
    delivery (the message's ``transport_id``) if a handler needs to refuse a
    second copy.

    :param secrets: one secret or several (during a rotation); a string is
        used as its UTF-8 bytes, as GitHub does.
    :raises ValueError: no secret, or an empty one.
    """

    def __init__(self, secrets: str | bytes | Iterable[str | bytes]) -> None:
        keys = []
        for secret in _as_list(secrets):
            key = secret.encode() if isinstance(secret, str) else secret
            if not key:
                raise ValueError("a GitHub webhook secret cannot be empty")
            keys.append(key)
        self._keys = tuple(keys)

    def verify(self, environ: Mapping[str, Any], body: bytes) -> None:
        """Check ``X-Hub-Signature-256`` against the body and the secrets.

        :raises InvalidSignature: the header is missing or malformed, or
            matches no secret.
        """
        header = _header(environ, "HTTP_X_HUB_SIGNATURE_256", "X-Hub-Signature-256")
        algorithm, _, hexdigest = header.partition("=")
        if algorithm != "sha256":
            raise InvalidSignature("X-Hub-Signature-256 does not start with sha256=")
        try:
            provided = bytes.fromhex(hexdigest)
        except ValueError:
            raise InvalidSignature("X-Hub-Signature-256 is not hexadecimal") from None
        for key in self._keys:
            digest = hmac.new(key, body, hashlib.sha256).digest()
            if hmac.compare_digest(digest, provided):
                return
        raise InvalidSignature("X-Hub-Signature-256 matches no secret")

    def sign(self, body: bytes) -> str:
        """Return the ``X-Hub-Signature-256`` value for ``body``, with the
        first secret.
        """
        return "sha256=" + hmac.new(self._keys[0], body, hashlib.sha256).hexdigest()


def _as_list(secrets: str | bytes | Iterable[str | bytes]) -> list[str | bytes]:
    """Accept one secret or several; a string is one secret, not characters."""
    found = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    if not found:
        raise ValueError("give at least one webhook secret")
    return found


def _standard_webhooks_key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        encoded = secret.removeprefix(_WHSEC_PREFIX)
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            # The secret itself stays out of the message: it may end in a log.
            raise ValueError(
                "a Standard Webhooks secret string must be 'whsec_' followed by "
                "base64; pass bytes to use a raw key"
            ) from None
    if not key:
        raise ValueError("a Standard Webhooks secret cannot be empty")
    return key


def _header(environ: Mapping[str, Any], key: str, name: str) -> str:
    value = environ.get(key)
    if not value:
        raise InvalidSignature(f"missing header {name}")
    return str(value)
