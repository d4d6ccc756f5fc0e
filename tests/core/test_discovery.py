"""Reading entry points from metadata files, without importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import zipfile

import pluggy

import missive
import missive.messages
from missive.plugins import PluginRegistry, discovery, hookimpl, use_registry


def test_scan_reads_the_same_entry_points_as_importlib_metadata():
    groups = ("missive.adapters", "missive.messages", "missive.dlq")

    ours = {(e.group, e.name, e.value, e.distribution) for e in discovery.scan(groups)}
    theirs = {
        (ep.group, ep.name, ep.value, ep.dist.name)
        for group in groups
        for ep in importlib.metadata.entry_points(group=group)
    }

    assert ours == theirs
    assert (
        "missive.adapters",
        "stdin",
        "missive.plugins.builtins",
        "missive-core",
    ) in ours


def test_first_distribution_of_a_name_on_the_path_wins(fake_dists):
    later = fake_dists.sibling("later")
    fake_dists.add("missive-thing", {"missive.adapters": {"thing": "first_module"}})
    later.add("missive_thing", {"missive.adapters": {"thing": "second_module"}})

    found = discovery.scan(
        ["missive.adapters"], [str(fake_dists.root), str(later.root)]
    )

    assert [(info.name, info.value) for info in found] == [("thing", "first_module")]


def test_name_and_version_come_from_the_metadata_headers(fake_dists):
    fake_dists.add(
        "Missive.Fancy-Name", {"missive.dlq": {"fancy": "fancy_module"}}, version="2.3"
    )

    [info] = discovery.scan(["missive.dlq"], [str(fake_dists.root)])

    assert (info.distribution, info.version) == ("Missive.Fancy-Name", "2.3")
    assert info.describe() == (
        "DLQ backend 'fancy' from distribution Missive.Fancy-Name 2.3 "
        "(entry point fancy = fancy_module)"
    )


def test_other_groups_and_comments_are_ignored(fake_dists):
    fake_dists.add(
        "missive-mixed",
        {
            "console_scripts": {"mixed": "mixed:main"},
            "missive.adapters": {"mixed": "mixed_plugin"},
        },
    )

    found = discovery.scan(["missive.adapters"], [str(fake_dists.root)])

    assert [(info.group, info.name) for info in found] == [
        ("missive.adapters", "mixed")
    ]


def test_zip_files_on_the_path_are_read_through_importlib(tmp_path):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "missive_zipped-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: missive-zipped\nVersion: 1.0\n",
        )
        zipped.writestr(
            "missive_zipped-1.0.dist-info/entry_points.txt",
            "[missive.adapters]\nzipped = zipped_plugin\n",
        )

    found = discovery.scan(["missive.adapters"], [str(archive)])

    assert [(info.name, info.distribution) for info in found] == [
        ("zipped", "missive-zipped")
    ]


def test_loading_a_builtin_imports_neither_pluggy_nor_importlib_metadata(run_python):
    result = run_python(
        "import sys, missive.adapters\n"
        "missive.adapters.load('stdin')\n"
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('pluggy', 'importlib.metadata'))))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_pluggys_own_marker_works_as_well_as_missives():
    pluggy_marker = pluggy.HookimplMarker("missive")

    class WithPluggyMarker:
        @pluggy_marker
        def missive_message_formats(self):
            return {"p": missive.RawMessage}

    class WithMissiveMarker:
        @hookimpl(tryfirst=True)
        def missive_message_formats(self):
            return {"m": missive.JSONMessage}

    registry = PluginRegistry(discover=False)
    registry.register(WithPluggyMarker())
    registry.register(WithMissiveMarker())

    assert registry.load("missive.messages", "p") is missive.RawMessage
    assert registry.load("missive.messages", "m") is missive.JSONMessage
    assert len(registry.manager.hook.missive_message_formats.get_hookimpls()) == 2


def test_implementation_under_another_name_with_specname_is_found():
    class Renamed:
        @hookimpl(specname="missive_message_formats")
        def formats(self):
            return {"renamed": missive.RawMessage}

    registry = PluginRegistry(discover=False)
    registry.register(Renamed())

    with use_registry(registry):
        assert missive.messages.load("renamed") is missive.RawMessage


def test_validate_reports_a_hook_with_the_wrong_arguments():
    class Wrong:
        @hookimpl
        def missive_message_outcome(self, message, verdict):
            pass

    registry = PluginRegistry(discover=False)
    registry.register(Wrong(), "wrong-plugin")

    problems = registry.validate()

    assert len(problems) == 1
    assert problems[0].startswith("wrong-plugin:")
    assert "verdict" in problems[0]
