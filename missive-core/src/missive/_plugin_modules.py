"""Import ``missive.<kind>.<name>`` from whichever plugin provides ``<name>``.

0.8.1 shipped its Redis adapter as ``missive.adapters.redis`` and its SQLite
DLQ as ``missive.dlq.sqlite``.  They now live in separate distributions; this
module keeps those import paths working for every plugin at once, through a
meta path finder that core installs for each package of plugins.  It finds
nothing until a real submodule lookup has failed, and scans entry points only
then.
"""

from __future__ import annotations

import importlib.machinery
import sys
from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader as _LoaderBase
else:
    _LoaderBase = object


# The finder and loader implement the import protocols without deriving from
# importlib.abc, whose import pulls in importlib.resources and costs more than
# the rest of `import missive` together.


class _ExistingModuleLoader(_LoaderBase):
    """Hands the import system a module that is already imported."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self._module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the plugin module executed when it was imported."""


class PluginModuleFinder:
    """Resolves ``<package>.<name>`` to the module of plugin ``<name>``.

    :param package: the core package, such as ``"missive.adapters"``.
    :param group: the entry-point group whose names it serves.
    """

    def __init__(self, package: str, group: str) -> None:
        self.package = package
        self.group = group

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        if parent != self.package:
            return None

        from missive import plugins

        module = plugins.plugin_module(self.group, name)
        return importlib.machinery.ModuleSpec(
            fullname,
            _ExistingModuleLoader(module),
            origin=module.__name__,
        )


def install(package: str, group: str) -> None:
    """Add a finder for ``package`` after every other finder, once."""
    for finder in sys.meta_path:
        if isinstance(finder, PluginModuleFinder) and finder.package == package:
            return
    sys.meta_path.append(PluginModuleFinder(package, group))
