"""Packaging: one version for every first-party distribution."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = sorted(path.parent for path in REPO.glob("missive-*/pyproject.toml"))
VERSION = (REPO / "VERSION").read_text().strip()


def _project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda path: path.name)
def test_version_comes_from_the_repository_version_file(folder):
    config = _project(folder)

    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["hatch"]["version"]["path"] == "../VERSION"


@pytest.mark.parametrize(
    "folder",
    [folder for folder in DISTRIBUTIONS if folder.name != "missive-core"],
    ids=lambda path: path.name,
)
def test_plugins_depend_on_a_core_range_that_admits_this_version(folder):
    requirements = [
        Requirement(text) for text in _project(folder)["project"]["dependencies"]
    ]
    [core] = [req for req in requirements if req.name == "missive-core"]

    assert not any(spec.operator == "==" for spec in core.specifier)
    assert core.specifier.contains(VERSION)


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda path: path.name)
def test_every_distribution_is_typed_and_documented(folder):
    packages = list((folder / "src").iterdir())

    assert (folder / "README.md").is_file()
    assert [package for package in packages if (package / "py.typed").is_file()]


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
