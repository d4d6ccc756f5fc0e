"""Find installed plugins by reading entry points straight from metadata files.

``importlib.metadata`` costs more to import than the rest of Missive's start
together, and loading a built-in adapter by name has a budget of a few
milliseconds.  Installed distributions on ``sys.path`` folders are
``*.dist-info`` (or ``*.egg-info``) folders holding an ``entry_points.txt``;
this module lists those folders and reads only the entry points of Missive's
groups.  Entries of ``sys.path`` that are not folders (zip files, eggs) are
read through ``importlib.metadata``, which handles every format.

Like ``importlib.metadata``, the first distribution of a name on ``sys.path``
wins: a distribution installed twice is seen once.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: What users call the plugins of each entry-point group.
KIND_NAMES = {
    "missive.adapters": "adapter",
    "missive.messages": "message format",
    "missive.dlq": "DLQ backend",
    "missive.commands": "command",
    "missive.observers": "observer",
}

_METADATA_SUFFIXES = (".dist-info", ".egg-info")


class PluginInfo:
    """One entry point of an installed plugin, read from metadata alone."""

    __slots__ = ("distribution", "group", "name", "value", "version")

    def __init__(
        self, group: str, name: str, value: str, distribution: str, version: str
    ) -> None:
        self.group = group
        self.name = name
        self.value = value
        self.distribution = distribution
        self.version = version

    def _key(self) -> tuple[str, str, str, str, str]:
        return (self.group, self.name, self.value, self.distribution, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PluginInfo):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"PluginInfo({self.describe()})"

    @property
    def kind(self) -> str:
        return KIND_NAMES.get(self.group, self.group)

    def describe(self) -> str:
        return (
            f"{self.kind} {self.name!r} from distribution {self.distribution} "
            f"{self.version} (entry point {self.name} = {self.value})"
        )


def scan(groups: Iterable[str], path: Iterable[str] | None = None) -> list[PluginInfo]:
    """Return the entry points of ``groups`` from every distribution on ``path``.

    :param path: the folders to search, ``sys.path`` by default.
    """
    wanted = frozenset(groups)
    found: list[PluginInfo] = []
    seen: set[str] = set()
    for entry in sys.path if path is None else path:
        folder = entry or "."
        if os.path.isdir(folder):
            found.extend(_scan_folder(folder, wanted, seen))
        elif os.path.exists(folder):
            found.extend(_scan_with_importlib(folder, wanted, seen))
    return found


def _scan_folder(
    folder: str, wanted: frozenset[str], seen: set[str]
) -> Iterator[PluginInfo]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        if not name.endswith(_METADATA_SUFFIXES):
            continue
        stem = name.rpartition(".")[0]
        project, _, version = stem.partition("-")
        key = _normalize(project)
        if key in seen:
            continue
        seen.add(key)

        metadata_dir = os.path.join(folder, name)
        text = _read(os.path.join(metadata_dir, "entry_points.txt"))
        if not text:
            continue
        points = list(_parse(text, wanted))
        if not points:
            continue
        display, version = _name_and_version(metadata_dir, project, version)
        for group, ep_name, value in points:
            yield PluginInfo(group, ep_name, value, display, version)


def _scan_with_importlib(
    entry: str, wanted: frozenset[str], seen: set[str]
) -> Iterator[PluginInfo]:
    import importlib.metadata

    for dist in importlib.metadata.distributions(path=[entry]):
        name = dist.metadata["Name"] or "(unknown)"
        key = _normalize(name)
        if key in seen:
            continue
        seen.add(key)
        for point in dist.entry_points:
            if point.group in wanted:
                yield PluginInfo(
                    point.group, point.name, point.value, name, dist.version
                )


def _normalize(project: str) -> str:
    """A project name as PEP 503 compares it: runs of ``-_.`` become ``-``."""
    key = project.lower().replace("_", "-").replace(".", "-")
    while "--" in key:
        key = key.replace("--", "-")
    return key


def _parse(text: str, wanted: frozenset[str]) -> Iterator[tuple[str, str, str]]:
    """Yield ``(group, name, value)`` from an ``entry_points.txt`` (INI-like)."""
    group = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        if group in wanted and "=" in line:
            name, _, value = line.partition("=")
            yield group, name.strip(), value.strip()


def _name_and_version(metadata_dir: str, project: str, version: str) -> tuple[str, str]:
    """Read ``Name`` and ``Version`` from the metadata headers (the file name
    only has the normalised project name, and egg-info may lack the version)."""
    for file_name in ("METADATA", "PKG-INFO"):
        text = _read(os.path.join(metadata_dir, file_name), limit=4096)
        if not text:
            continue
        headers = dict(
            line.split(": ", 1)
            for line in text.split("\n\n", 1)[0].splitlines()
            if ": " in line
        )
        return headers.get("Name", project), headers.get("Version", version)
    return project, version


def _read(path: str, limit: int = -1) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read(limit)
    except (OSError, UnicodeDecodeError):
        return ""
