"""Register plugin objects on a fresh plugin manager, without installing them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from missive.plugins import PluginRegistry, builtins, use_registry


@contextmanager
def register_plugin(
    *plugins: object, core_builtins: bool = True, discover: bool = False
) -> Iterator[PluginRegistry]:
    """Make a fresh registry holding ``plugins`` current inside the block.

    ``missive.adapters.load``, ``missive.messages.load``, ``missive.dlq.load``
    and outcome observers then see exactly these plugins, as if their
    distributions were installed, and the previous registry comes back on
    the way out::

        with register_plugin(my_plugin_module):
            assert missive.adapters.load("mine") is MyAdapter

    :param plugins: modules or objects whose functions are marked with
        :data:`missive.plugins.hookimpl`.
    :param core_builtins: also register core's own components (``stdin``,
        ``raw``, ``json``, ``dict``, ``memory``), which are otherwise found
        through entry points.
    :param discover: also find installed distributions through entry points.
    """
    registry = PluginRegistry(discover=discover)
    if core_builtins and not discover:
        registry.register(builtins, "missive-core:builtins")
    for plugin in plugins:
        registry.register(plugin)
    with use_registry(registry):
        yield registry


@pytest.fixture
def missive_plugins() -> Iterator[PluginRegistry]:
    """A fresh plugin registry, current for the test, with core's builtins.

    Call ``missive_plugins.register(plugin)`` to add a plugin object; nothing
    installed is discovered.
    """
    with register_plugin() as registry:
        yield registry
