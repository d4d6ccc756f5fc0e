"""The ``missive`` command line: list plugins and run processors.

Plugins add subcommands through the ``missive.commands`` entry-point group;
only the plugin of the subcommand being run is imported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from missive import plugins
from missive.adapters import Adapter, RunnableAdapter
from missive.errors import MissiveError
from missive.processor import Processor

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CommandError(MissiveError):
    """A problem the user can fix; printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)

    try:
        status: int = args.handler(args)
    except (CommandError, MissiveError) as exc:
        print(f"missive: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("missive: interrupted", file=sys.stderr)
        return 130
    return status


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Build the parser; import the plugin of ``argv``'s subcommand, if any."""
    parser = argparse.ArgumentParser(
        prog="missive", description="Run Missive message processors."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )
    parser.set_defaults(handler=lambda args: _print_help(parser))
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_plugins_command(subparsers)
    _add_run_command(subparsers)
    _add_plugin_commands(subparsers, argv)
    return parser


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# --- missive plugins -------------------------------------------------------


def _add_plugins_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins",
        description="List installed plugins from their metadata.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="import every plugin and report those that fail (exit 1 if any)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_run_plugins)


def _run_plugins(args: argparse.Namespace) -> int:
    registry = plugins.get_registry()
    rows: list[dict[str, Any]] = []
    for group in plugins.GROUPS:
        for info in registry.entries(group):
            row = {
                "kind": info.kind,
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "entry_point": info.value,
            }
            if args.check:
                row["error"] = _check_plugin(registry, info)
            rows.append(row)

    if args.check:
        # Loaded plugins are also checked against the hook specifications.
        for problem in registry.validate():
            for row in rows:
                if not row["error"] and problem.startswith(
                    f"{row['distribution']}:{row['entry_point']}:"
                ):
                    row["error"] = problem

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_plugin_table(rows, check=args.check)
    return 1 if any(row.get("error") for row in rows) else 0


def _check_plugin(registry: plugins.PluginRegistry, info: plugins.PluginInfo) -> str:
    """Import one plugin; return what went wrong, or an empty string."""
    try:
        if info.group in (plugins.ADAPTERS, plugins.MESSAGES, plugins.DLQ):
            registry.load(info.group, info.name)
        else:
            registry.plugin_module(info.group, info.name)
    except (MissiveError, ImportError) as exc:
        return str(exc)
    return ""


def _print_plugin_table(rows: list[dict[str, Any]], *, check: bool) -> None:
    headers = ["KIND", "NAME", "DISTRIBUTION", "VERSION"] + (
        ["STATUS"] if check else []
    )
    table = [
        [row["kind"], row["name"], row["distribution"], row["version"]]
        + ([f"error: {row['error']}" if row["error"] else "ok"] if check else [])
        for row in rows
    ]
    print_table(headers, table)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` under ``headers`` in aligned columns.

    For plugin subcommands too, so that every table of the CLI looks alike.
    """
    widths = [
        max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))
    ]
    for line in [headers, *rows]:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )


# --- missive run -----------------------------------------------------------


def _add_run_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a processor or an adapter",
        description=(
            "Run MODULE:ATTR. ATTR is either an adapter object, which is run "
            "as it is, or a processor, which is run with the adapter named by "
            "--adapter."
        ),
    )
    parser.add_argument("target", metavar="MODULE:ATTR", help="what to run")
    parser.add_argument("--adapter", help="adapter name, for a processor (e.g. stdin)")
    parser.add_argument(
        "--message",
        default="raw",
        help="message format name, for a processor (default: raw)",
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an adapter option; repeat for several",
    )
    parser.set_defaults(handler=_run_target)


def _run_target(args: argparse.Namespace) -> int:
    target = import_object(args.target)
    options = _parse_options(args.option)

    if isinstance(target, Adapter):
        if args.adapter or options:
            raise CommandError(
                f"{args.target} is already an adapter; "
                "--adapter and -o apply to a processor only"
            )
        adapter: Adapter[Any] = target
    elif isinstance(target, Processor):
        if not args.adapter:
            raise CommandError(
                f"{args.target} is a processor: say which adapter runs it, "
                "e.g. --adapter stdin"
            )
        adapter = _build_adapter(target, args.adapter, args.message, options)
    else:
        raise CommandError(
            f"{args.target} is a {type(target).__name__}, "
            "not a missive Processor or Adapter"
        )

    run = getattr(adapter, "run", None)
    if run is None:
        raise CommandError(f"{type(adapter).__name__} has no run() method")
    run()
    return 0


def _build_adapter(
    processor: Processor[Any],
    adapter_name: str,
    message_name: str,
    options: dict[str, str],
) -> Adapter[Any]:
    from missive import adapters, messages

    adapter_cls = adapters.load(adapter_name)
    message_cls = messages.load(message_name)
    if not issubclass(adapter_cls, RunnableAdapter):
        raise CommandError(
            f"adapter {adapter_name!r} cannot be run from the command line"
        )
    try:
        return adapter_cls.from_options(message_cls, processor, options)
    except TypeError as exc:
        raise CommandError(f"bad options for adapter {adapter_name!r}: {exc}") from exc


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"option {pair!r} is not KEY=VALUE")
        options[key.replace("-", "_")] = value
    return options


def import_object(target: str) -> Any:
    """Import ``MODULE:ATTR`` (ATTR may be dotted), as ``missive run`` does.

    The current directory is importable, as it is for ``python -m``.

    :raises CommandError: the module or attribute does not exist, or the
        module failed to import.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise CommandError(f"{target!r} is not MODULE:ATTR")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise CommandError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise CommandError(
                f"{module_name!r} has no attribute {attr_path!r}"
            ) from None
    return obj


# --- commands from plugins -------------------------------------------------


def _add_plugin_commands(
    subparsers: argparse._SubParsersAction[Any], argv: Sequence[str]
) -> None:
    """Add each plugin command: for real if it is being run, else as a name."""
    registry = plugins.get_registry()
    wanted = set(argv)
    for info in registry.entries(plugins.COMMANDS):
        if info.name in subparsers.choices:
            continue
        if info.name not in wanted:
            subparsers.add_parser(info.name, help=f"(from {info.distribution})")
            continue
        try:
            module = registry.plugin_module(plugins.COMMANDS, info.name)
        except (MissiveError, ImportError) as exc:
            parser = subparsers.add_parser(info.name, help="(broken plugin)")
            parser.set_defaults(handler=_fail_with(str(exc)))
            continue
        registry.manager.subset_hook_caller(
            "missive_add_commands",
            remove_plugins=[
                plugin
                for plugin in registry.manager.get_plugins()
                if plugin is not module
            ],
        )(subparsers=subparsers)


def _fail_with(text: str) -> Any:
    def fail(args: argparse.Namespace) -> int:
        raise CommandError(text)

    return fail
