"""The plugin layer: finding, importing and registering plugins.

Plugins are found through entry points (see :mod:`missive.plugins.hookspecs`
for the groups and hooks) and registered with a :class:`PluginRegistry`.
Everything is lazy: listing reads only metadata files, and loading a name
imports only the plugin that provides it.

Loading a component by name calls the one providing plugin's hook directly;
the pluggy plugin manager, which validates implementations against the hook
specifications and calls a hook on every plugin at once (outcome observers,
CLI commands), is built the first time something needs it.  That keeps
``missive.adapters.load("stdin")`` within a few milliseconds of
``import missive``.

Tests that need a plugin without installing a distribution build their own
registry and make it current with :func:`use_registry`.
"""

from __future__ import annotations

import _thread  # the locks of threading, without importing threading
import importlib
import sys

from missive._logger import get_logger
from missive._typing import TypeVar, cast, overload
from missive.errors import DuplicatePlugin, PluginLoadError, PluginNotFound
from missive.plugins.discovery import KIND_NAMES, PluginInfo, scan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType, TracebackType
    from typing import Any

    import pluggy

__all__ = [
    "ADAPTERS",
    "COMMANDS",
    "DLQ",
    "GROUPS",
    "KIND_NAMES",
    "MESSAGES",
    "OBSERVERS",
    "PluginInfo",
    "PluginRegistry",
    "get_registry",
    "hookimpl",
    "load",
    "names",
    "outcome_observer",
    "plugin_module",
    "use_registry",
]

logger = get_logger(__name__)

PROJECT_NAME = "missive"

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

#: First-party distributions, to say what to install for a missing name.
KNOWN_DISTRIBUTIONS = {
    (ADAPTERS, "redis"): "missive-redis",
    (ADAPTERS, "redis-streams"): "missive-redis",
    (ADAPTERS, "wsgi"): "missive-wsgi",
    (DLQ, "sqlite"): "missive-sqlite-dlq",
    (COMMANDS, "dlq"): "missive-sqlite-dlq",
}

#: The attribute a hook implementation carries its options in; pluggy's own
#: ``HookimplMarker("missive")`` writes the same one, so either marker works.
_MARK = f"{PROJECT_NAME}_impl"

F = TypeVar("F", bound="Callable[..., Any]")


class HookimplMarker:
    """Marks a plugin's function as the implementation of a Missive hook.

    Use it bare (``@hookimpl``) or with pluggy's options
    (``@hookimpl(tryfirst=True)``).  It records the options exactly as
    ``pluggy.HookimplMarker("missive")`` does, without importing pluggy, so
    that importing a plugin stays cheap.
    """

    @overload
    def __call__(self, function: F) -> F: ...

    @overload
    def __call__(
        self,
        function: None = None,
        *,
        tryfirst: bool = False,
        trylast: bool = False,
        optionalhook: bool = False,
        specname: str | None = None,
    ) -> Callable[[F], F]: ...

    def __call__(
        self,
        function: F | None = None,
        *,
        tryfirst: bool = False,
        trylast: bool = False,
        optionalhook: bool = False,
        specname: str | None = None,
    ) -> F | Callable[[F], F]:
        options = {
            "wrapper": False,
            "hookwrapper": False,
            "optionalhook": optionalhook,
            "tryfirst": tryfirst,
            "trylast": trylast,
            "specname": specname,
        }

        def mark(func: F) -> F:
            setattr(func, _MARK, dict(options))
            return func

        return mark if function is None else mark(function)


hookimpl = HookimplMarker()


class PluginRegistry:
    """Installed and hand-registered plugins, and what they provide.

    :param discover: find plugins through entry points; a registry built with
        ``discover=False`` knows only the plugins passed to :meth:`register`.
    """

    def __init__(self, *, discover: bool = True) -> None:
        self.discover = discover
        self._lock = _thread.RLock()
        self._plugins: dict[str, object] = {}
        self._implementations: dict[tuple[str, str], Callable[..., Any] | None] = {}
        self._imported: dict[tuple[str, str], ModuleType] = {}
        self._manager: pluggy.PluginManager | None = None
        self._observers_loaded = False
        self._scanned: tuple[tuple[str, ...], list[PluginInfo]] | None = None

    @property
    def manager(self) -> pluggy.PluginManager:
        """The pluggy plugin manager, with every registered plugin on it.

        A plugin whose hooks do not match the specifications is left off and
        logged; :meth:`validate` reports it.
        """
        with self._lock:
            if self._manager is None:
                manager = _new_manager()
                for name, plugin in self._plugins.items():
                    _register_validated(manager, plugin, name)
                self._manager = manager
            return self._manager

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object by hand, as a test or an application may."""
        with self._lock:
            name = name or f"{type(plugin).__name__}-{id(plugin)}"
            self._plugins[name] = plugin
            if self._manager is not None:
                _register_validated(self._manager, plugin, name)

    def validate(self) -> list[str]:
        """Check every registered plugin against the hook specifications.

        :returns: one line per problem; empty when all is well.
        """
        import pluggy

        problems = []
        manager = _new_manager()
        for name, plugin in self._plugins.items():
            try:
                manager.register(plugin, name)
            except pluggy.PluginValidationError as exc:
                problems.append(f"{name}: {exc}")
        try:
            manager.check_pending()
        except pluggy.PluginValidationError as exc:
            problems.append(str(exc))
        return problems

    def entries(self, group: str) -> list[PluginInfo]:
        """Return the entry points of ``group``, read from metadata only."""
        if not self.discover:
            return []
        with self._lock:
            path = tuple(sys.path)
            if self._scanned is None or self._scanned[0] != path:
                self._scanned = (path, scan(GROUPS, path))
            found = self._scanned[1]
        return sorted(
            (info for info in found if info.group == group),
            key=lambda info: (info.name, info.distribution),
        )

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
        no plugin observes outcomes, so processing skips the call entirely
        (and pluggy is not even imported).
        """
        with self._lock:
            if not self._observers_loaded:
                self._observers_loaded = True
                for _, error in self.load_group(OBSERVERS):
                    if error is not None:
                        logger.error("skipping broken observer: %s", error)
            observed = any(
                self._implementation(name, plugin, "missive_message_outcome")
                for name, plugin in self._plugins.items()
            )
        if not observed:
            return None

        hook = self.manager.hook.missive_message_outcome

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
            except Exception as exc:
                raise PluginLoadError(
                    f"{info.describe()} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            if not any(plugin is module for plugin in self._plugins.values()):
                self.register(module, f"{info.distribution}:{info.value}")
            self._imported[key] = module
            logger.debug("loaded %s", info.describe())
            return module

    def _provided(self, group: str) -> dict[str, Any]:
        """Merge what every registered plugin provides for ``group``."""
        hook_name = _COMPONENT_HOOKS[group]
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        with self._lock:
            plugins = list(self._plugins.items())
        for plugin_name, plugin in plugins:
            implementation = self._implementation(plugin_name, plugin, hook_name)
            if implementation is None:
                continue
            for name, component in implementation().items():
                if name in merged and merged[name] is not component:
                    raise DuplicatePlugin(
                        f"{KIND_NAMES[group]} {name!r} is provided by both "
                        f"plugin {owners[name]} and plugin {plugin_name}"
                    )
                merged[name] = component
                owners[name] = plugin_name
        return merged

    def _implementation(
        self, plugin_name: str, plugin: object, hook_name: str
    ) -> Callable[..., Any] | None:
        key = (plugin_name, hook_name)
        if key not in self._implementations:
            self._implementations[key] = _implementation(plugin, hook_name)
        return self._implementations[key]

    def _not_found_message(self, group: str, name: str) -> str:
        kind = KIND_NAMES[group]
        available = self.names(group)
        text = f"no installed distribution provides the {kind} {name!r}"
        text += f"; installed: {', '.join(available) if available else 'none'}"
        distribution = KNOWN_DISTRIBUTIONS.get((group, name))
        if distribution is not None:
            return f"{text}. Install it with: pip install {distribution}"
        import difflib

        close = difflib.get_close_matches(name, available, n=1)
        if close:
            return f"{text}. Did you mean {close[0]!r}?"
        return f"{text}. Look for a distribution named missive-{name}."


def _implementation(plugin: object, hook_name: str) -> Callable[..., Any] | None:
    """The plugin's marked implementation of ``hook_name``, if it has one."""
    candidate = getattr(plugin, hook_name, None)
    if callable(candidate) and isinstance(getattr(candidate, _MARK, None), dict):
        return cast("Callable[..., Any]", candidate)
    # An implementation may carry another name and say which hook it is.
    for attribute in dir(plugin):
        candidate = getattr(plugin, attribute, None)
        options = getattr(candidate, _MARK, None)
        if isinstance(options, dict) and options.get("specname") == hook_name:
            return cast("Callable[..., Any]", candidate)
    return None


def _new_manager() -> pluggy.PluginManager:
    import pluggy

    from missive.plugins import hookspecs

    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def _register_validated(
    manager: pluggy.PluginManager, plugin: object, name: str
) -> None:
    import pluggy

    try:
        manager.register(plugin, name)
    except pluggy.PluginValidationError:
        logger.exception("plugin %s does not match the hook specifications", name)


_registry: PluginRegistry | None = None
_registry_lock = _thread.allocate_lock()


def get_registry() -> PluginRegistry:
    """Return the current registry, creating the default one on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = PluginRegistry()
    return _registry


class use_registry:
    """Make ``registry`` current inside the block, then restore the previous.

    The way to test a plugin without installing it::

        registry = PluginRegistry(discover=False)
        registry.register(my_plugin_module)
        with use_registry(registry):
            ...
    """

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self._previous: PluginRegistry | None = None

    def __enter__(self) -> PluginRegistry:
        global _registry
        self._previous, _registry = _registry, self.registry
        return self.registry

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _registry
        _registry = self._previous


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
