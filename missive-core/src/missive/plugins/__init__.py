"""The plugin layer: finding, importing and registering plugins.

Plugins are found through entry points (see :mod:`missive.plugins.hookspecs`
for the groups and hooks) and registered on a pluggy plugin manager owned by a
:class:`PluginRegistry`.  Everything is lazy: listing reads only metadata, and
loading a name imports only the plugin that provides it.

Tests that need a plugin without installing a distribution build their own
registry and make it current with :func:`use_registry`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from missive.errors import DuplicatePlugin, PluginLoadError, PluginNotFound
from missive.plugins import hookspecs

logger = logging.getLogger(__name__)

ADAPTERS = "missive.adapters"
MESSAGES = "missive.messages"
DLQ = "missive.dlq"
COMMANDS = "missive.commands"
OBSERVERS = "missive.observers"

#: The entry-point groups, in the order ``missive plugins`` lists them.
GROUPS = (ADAPTERS, MESSAGES, DLQ, COMMANDS, OBSERVERS)

#: Which hook returns the components of each kind.
_COMPONENT_HOOKS = {
    ADAPTERS: "missive_adapters",
    MESSAGES: "missive_message_formats",
    DLQ: "missive_dlq_backends",
}

#: What users call each kind in messages.
KIND_NAMES = {
    ADAPTERS: "adapter",
    MESSAGES: "message format",
    DLQ: "DLQ backend",
    COMMANDS: "command",
    OBSERVERS: "observer",
}

#: First-party distributions, to say what to install for a missing name.
KNOWN_DISTRIBUTIONS = {
    (ADAPTERS, "redis"): "missive-redis",
    (ADAPTERS, "redis-streams"): "missive-redis",
    (ADAPTERS, "wsgi"): "missive-wsgi",
    (DLQ, "sqlite"): "missive-sqlite-dlq",
    (COMMANDS, "dlq"): "missive-sqlite-dlq",
}

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)
"""Marks a plugin's function as the implementation of a Missive hook."""


@dataclass(frozen=True)
class PluginInfo:
    """One entry point of an installed plugin, read from metadata alone."""

    group: str
    name: str
    value: str
    distribution: str
    version: str

    @property
    def kind(self) -> str:
        return KIND_NAMES.get(self.group, self.group)

    def describe(self) -> str:
        return (
            f"{self.kind} {self.name!r} from distribution {self.distribution} "
            f"{self.version} (entry point {self.name} = {self.value})"
        )


class PluginRegistry:
    """Installed and hand-registered plugins, and what they provide.

    :param discover: find plugins through entry points; a registry built with
        ``discover=False`` knows only the plugins passed to :meth:`register`.
    """

    def __init__(self, *, discover: bool = True) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.discover = discover
        self._lock = threading.RLock()
        self._imported: dict[tuple[str, str], ModuleType] = {}
        self._observers_loaded = False

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object by hand, as a test or an application may."""
        with self._lock:
            self.manager.register(plugin, name)

    def entries(self, group: str) -> list[PluginInfo]:
        """Return the entry points of ``group``, read from metadata only."""
        if not self.discover:
            return []
        seen: dict[tuple[str, str, str], PluginInfo] = {}
        for entry_point in importlib.metadata.entry_points(group=group):
            dist = entry_point.dist
            info = PluginInfo(
                group=group,
                name=entry_point.name,
                value=entry_point.value,
                distribution=dist.name if dist is not None else "(unknown)",
                version=dist.version if dist is not None else "",
            )
            # A distribution seen twice on sys.path is still one distribution.
            seen.setdefault((info.name, info.value, info.distribution), info)
        return sorted(seen.values(), key=lambda info: (info.name, info.distribution))

    def names(self, group: str) -> list[str]:
        """Return every name available in ``group``, sorted."""
        found = {info.name for info in self.entries(group)}
        if group in _COMPONENT_HOOKS:
            found.update(self._provided(group))
        return sorted(found)

    def plugin_module(self, group: str, name: str) -> ModuleType:
        """Import and register the module that provides ``name`` in ``group``.

        ``name`` may use ``_`` for ``-``, as an import path must.

        :raises ModuleNotFoundError: no installed distribution provides it.
        :raises PluginLoadError: its module failed to import.
        :raises DuplicatePlugin: several distributions claim it.
        """
        try:
            info = self._entry(group, name)
        except PluginNotFound as exc:
            missing = ModuleNotFoundError(str(exc), name=f"{group}.{name}")
            raise missing from None
        return self._import(info)

    def load(self, group: str, name: str) -> Any:
        """Return the component registered under ``name`` in ``group``.

        :raises PluginNotFound: no plugin provides ``name``.
        :raises PluginLoadError: the plugin failed to import, or its entry
            point promised ``name`` and its hook did not provide it.
        :raises DuplicatePlugin: several distributions or plugins claim it.
        """
        provided = self._provided(group)
        if name in provided:
            return provided[name]

        info = self._entry(group, name)
        self._import(info)
        provided = self._provided(group)
        if name not in provided:
            raise PluginLoadError(
                f"{info.describe()} was imported but registered no "
                f"{info.kind} named {name!r} through {_COMPONENT_HOOKS[group]}()"
            )
        return provided[name]

    def load_group(self, group: str) -> list[tuple[PluginInfo, Exception | None]]:
        """Import every plugin of ``group``; return each with its error, if any.

        One broken plugin does not stop the others from loading.
        """
        results: list[tuple[PluginInfo, Exception | None]] = []
        for info in self.entries(group):
            try:
                self._import(info)
            except PluginLoadError as exc:
                results.append((info, exc))
            else:
                results.append((info, None))
        return results

    def outcome_observer(self) -> Callable[..., None] | None:
        """Return a callable reporting outcomes to observers, or ``None``.

        Loads the ``missive.observers`` plugins on first use.  ``None`` means
        no plugin observes outcomes, so processing skips the call entirely.
        """
        with self._lock:
            if not self._observers_loaded:
                self._observers_loaded = True
                for _, error in self.load_group(OBSERVERS):
                    if error is not None:
                        logger.error("skipping broken observer: %s", error)

        hook = self.manager.hook.missive_message_outcome
        if not hook.get_hookimpls():
            return None

        def observe(**kwargs: Any) -> None:
            try:
                hook(**kwargs)
            except Exception:
                logger.exception("an outcome observer raised; ignoring it")

        return observe

    def _entry(self, group: str, name: str) -> PluginInfo:
        """Find the one entry point that provides ``name``."""
        entries = self.entries(group)
        matches = [info for info in entries if info.name == name]
        if not matches and "_" in name:
            dashed = name.replace("_", "-")
            matches = [info for info in entries if info.name == dashed]
        if not matches:
            raise PluginNotFound(self._not_found_message(group, name))
        if len({info.distribution for info in matches}) > 1:
            raise DuplicatePlugin(
                f"{KIND_NAMES[group]} {name!r} is claimed by several "
                "distributions: "
                + "; ".join(info.describe() for info in matches)
                + ". Uninstall all but one."
            )
        return matches[0]

    def _import(self, info: PluginInfo) -> ModuleType:
        """Import an entry point's module and register it, once."""
        key = (info.group, info.name)
        with self._lock:
            if key in self._imported:
                return self._imported[key]
            try:
                module = importlib.import_module(info.value.partition(":")[0])
                if not self.manager.is_registered(module):
                    self.manager.register(module, f"{info.distribution}:{info.value}")
            except Exception as exc:
                raise PluginLoadError(
                    f"{info.describe()} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            self._imported[key] = module
            logger.debug("loaded %s", info.describe())
            return module

    def _provided(self, group: str) -> dict[str, Any]:
        """Merge what every registered plugin's hook provides for ``group``."""
        hook = getattr(self.manager.hook, _COMPONENT_HOOKS[group])
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for impl in reversed(hook.get_hookimpls()):
            for name, component in impl.function().items():
                if name in merged and merged[name] is not component:
                    raise DuplicatePlugin(
                        f"{KIND_NAMES[group]} {name!r} is provided by both "
                        f"plugin {owners[name]} and plugin {impl.plugin_name}"
                    )
                merged[name] = component
                owners[name] = impl.plugin_name
        return merged

    def _not_found_message(self, group: str, name: str) -> str:
        kind = KIND_NAMES[group]
        available = self.names(group)
        text = f"no installed distribution provides the {kind} {name!r}"
        text += f"; installed: {', '.join(available) if available else 'none'}"
        distribution = KNOWN_DISTRIBUTIONS.get((group, name))
        if distribution is not None:
            return f"{text}. Install it with: pip install {distribution}"
        close = difflib.get_close_matches(name, available, n=1)
        if close:
            return f"{text}. Did you mean {close[0]!r}?"
        return f"{text}. Look for a distribution named missive-{name}."


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> PluginRegistry:
    """Return the current registry, creating the default one on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = PluginRegistry()
    return _registry


@contextmanager
def use_registry(registry: PluginRegistry) -> Iterator[PluginRegistry]:
    """Make ``registry`` current inside the block, then restore the previous.

    The way to test a plugin without installing it::

        registry = PluginRegistry(discover=False)
        registry.register(my_plugin_module)
        with use_registry(registry):
            ...
    """
    global _registry
    previous = _registry
    _registry = registry
    try:
        yield registry
    finally:
        _registry = previous


def load(group: str, name: str) -> Any:
    """Load ``name`` from ``group`` in the current registry."""
    return get_registry().load(group, name)


def names(group: str) -> list[str]:
    """List the names of ``group`` in the current registry."""
    return get_registry().names(group)


def plugin_module(group: str, name: str) -> ModuleType:
    """Import the module of plugin ``name`` in ``group``."""
    return get_registry().plugin_module(group, name)


def outcome_observer() -> Callable[..., None] | None:
    """Return the current registry's outcome observer, or ``None``."""
    return get_registry().outcome_observer()
