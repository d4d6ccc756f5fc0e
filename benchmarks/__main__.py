"""Run the benchmark suite and write ``docs/benchmarks.md``.

    python -m benchmarks            # full run, writes docs/benchmarks.md
    python -m benchmarks --quick    # a short run that proves the suite works
    python -m benchmarks core redis # only these suites

Each suite is a module of this package with ``run(quick: bool) ->
list[Comparison]``.  The exit status is 1 when a full run misses a target.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import platform
import sys
from pathlib import Path

from benchmarks.harness import Comparison

SUITES = ("core", "startup", "redis", "wsgi", "sqlite_dlq")
DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"any of {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="few rounds, small counts")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default: {DOCUMENT} for a full run, "
        "nothing for --quick)",
    )
    args = parser.parse_args(argv)
    suites = args.suites or list(SUITES)
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")

    sections: list[tuple[str, list[Comparison]]] = []
    for suite in suites:
        module = importlib.import_module(f"benchmarks.{suite}")
        print(f"== {suite}", flush=True)
        results = module.run(quick=args.quick)
        for result in results:
            print(_table_row(result), flush=True)
        sections.append((suite, results))

    output = args.output or (None if args.quick else DOCUMENT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(_markdown(sections, quick=args.quick, argv=argv))
        print(f"wrote {output}")

    missed = [r for _, results in sections for r in results if r.met is False]
    for result in missed:
        print(f"target missed: {result.name}: {result.describe_target()}")
    return 1 if missed and not args.quick else 0


def _table_row(result: Comparison) -> str:
    target = "" if result.met is None else f" ({result.describe_target()})"
    return (
        f"  {result.name:<52} ratio {result.ratio:6.2f} "
        f"[{min(result.ratios):.2f}-{max(result.ratios):.2f}]{target}"
    )


def _markdown(
    sections: list[tuple[str, list[Comparison]]], *, quick: bool, argv: list[str] | None
) -> str:
    command = "python -m benchmarks " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    lines = [
        "# Benchmarks",
        "",
        "Every figure is a ratio: the rate through Missive divided by the rate of a",
        "baseline doing the same work without it, both measured in the same run,",
        "alternating round by round. The ratio is the median over the rounds; min",
        "and max show the spread. Rates are medians too, for scale only.",
        "",
        f"- command: `{command.strip()}`"
        + (" (quick: not a measurement)" if quick else ""),
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        (
            f"- machine: {platform.machine()}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}"
        ),
        "",
    ]
    for suite, results in sections:
        lines += [
            f"## {suite}",
            "",
            (
                "| benchmark | baseline | ratio (median) | min | max | target "
                "| rate | baseline rate |"
            ),
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            target = r.describe_target()
            rate = _median(r.candidate_rates)
            base = _median(r.baseline_rates)
            lines.append(
                f"| {r.name} | {r.baseline} | {r.ratio:.2f} | {min(r.ratios):.2f} "
                f"| {max(r.ratios):.2f} | {target} | {rate:,.0f} {r.unit} "
                f"| {base:,.0f} {r.unit} |"
            )
        notes = [f"- {r.name}: {r.note}" for r in results if r.note]
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(main())
