"""The distribution as a plugin: found by name, importable by the 0.8.1 path."""

from __future__ import annotations

import importlib

import missive.adapters
from missive_wsgi import WSGIAdapter


def test_load_by_name_returns_the_adapter_class() -> None:
    assert missive.adapters.load("wsgi") is WSGIAdapter


def test_wsgi_is_listed_among_installed_adapters() -> None:
    assert "wsgi" in missive.adapters.names()


def test_the_0_8_1_import_path_still_works() -> None:
    # As ``from missive.adapters.wsgi import WSGIAdapter`` does.
    module = importlib.import_module("missive.adapters.wsgi")

    assert module.WSGIAdapter is WSGIAdapter
