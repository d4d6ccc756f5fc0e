"""Fixtures for the core tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import missive
from missive.plugins import PluginRegistry, use_registry


@pytest.fixture
def processor() -> missive.Processor[missive.RawMessage]:
    return missive.Processor()


@pytest.fixture
def dlq() -> dict[bytes, tuple[missive.Message, str]]:
    return {}


@pytest.fixture
def isolated_registry() -> PluginRegistry:
    """A registry that knows no installed plugin, made current for the test."""
    registry = PluginRegistry(discover=False)
    with use_registry(registry):
        yield registry


class FakeDistributions:
    """Writes minimal installed distributions (dist-info folders) to a folder.

    importlib.metadata finds them like any installed distribution once the
    folder is on ``sys.path``, which is how tests exercise entry points of
    broken or conflicting plugins without installing anything.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def sibling(self, name: str) -> FakeDistributions:
        """Another folder of distributions next to this one."""
        return FakeDistributions(self.root.parent / name)

    def add(
        self,
        name: str,
        entry_points: dict[str, dict[str, str]],
        modules: dict[str, str] | None = None,
        version: str = "1.0",
    ) -> None:
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        sections = []
        for group, points in entry_points.items():
            lines = [f"[{group}]"] + [
                f"{key} = {value}" for key, value in points.items()
            ]
            sections.append("\n".join(lines))
        (dist_info / "entry_points.txt").write_text("\n\n".join(sections) + "\n")
        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def fake_dists(tmp_path: Path) -> FakeDistributions:
    return FakeDistributions(tmp_path / "site")
