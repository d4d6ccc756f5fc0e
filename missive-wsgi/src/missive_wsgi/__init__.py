"""Missive over HTTP: serve a processor as a webhook endpoint with any WSGI server.

::

    adapter = WSGIAdapter(JSONMessage, processor)
    # gunicorn 'myapp:adapter'

See :class:`WSGIAdapter` for the answers it gives, and
:mod:`missive_wsgi.signatures` for webhook signature verification.
"""

from __future__ import annotations

from missive_wsgi.adapter import DEFAULT_MAX_BODY_BYTES, WSGIAdapter
from missive_wsgi.signatures import (
    GitHubSignature,
    InvalidSignature,
    SignatureScheme,
    StandardWebhooksSignature,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "GitHubSignature",
    "InvalidSignature",
    "SignatureScheme",
    "StandardWebhooksSignature",
    "WSGIAdapter",
]
