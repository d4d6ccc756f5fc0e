"""The conformance kit: contract suites for plugin authors, as a pytest plugin.

Nothing here is loaded unless a test suite asks for it, from a test module or
its root ``conftest.py``::

    pytest_plugins = ["missive.testing"]

Then subclass a contract, say how to build the component under test, and
pytest runs every check of the contract against it:

- :class:`~missive.testing.adapters.AdapterContract` for transport adapters;
- :class:`~missive.testing.dlq.DLQContract` for dead letter queue backends;
- :class:`~missive.testing.formats.MessageFormatContract` for message formats.

The plugin also provides the ``missive_plugins`` fixture, and
:func:`~missive.testing.register_plugin` does the same as a context
manager: both make a fresh plugin registry current, so that a plugin object
is found by name without installing its distribution.

This module imports pytest; ``import missive`` never does.  pytest rewrites
the assertions of the contract modules, so that a failed check shows the
values compared.  (PYTEST_DONT_REWRITE: this module holds no assertion.)
"""

from __future__ import annotations

import pytest

# Before the contract modules are imported, so that their asserts are rewritten.
pytest.register_assert_rewrite(
    "missive.testing.adapters", "missive.testing.dlq", "missive.testing.formats"
)

from missive.testing.adapters import AdapterContract, TransportOutcome  # noqa: E402
from missive.testing.dlq import DLQContract  # noqa: E402
from missive.testing.formats import MessageFormatContract  # noqa: E402
from missive.testing.plugins import missive_plugins, register_plugin  # noqa: E402

__all__ = [
    "AdapterContract",
    "DLQContract",
    "MessageFormatContract",
    "TransportOutcome",
    "missive_plugins",
    "register_plugin",
]
