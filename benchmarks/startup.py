"""Start-up cost: importing Missive and loading adapters by name.

Each figure times a fresh interpreter running one statement, against a fresh
interpreter running ``pass``, alternately, and reports the extra milliseconds
(median over the rounds) as well as the ratio of the two rates.  Within a
round each side is started a few times and its fastest start counts: a single
start is at the mercy of the scheduler, and the fastest of a few is what the
interpreter itself costs.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks.harness import Comparison

#: Budgets from the speed issue, in milliseconds over the previous step.
IMPORT_BUDGET_MS = 15.0
BUILTIN_LOAD_BUDGET_MS = 5.0


#: Starts per side and round; the fastest counts.
STARTS_PER_ROUND = 5


def _time_interpreter(code: str, starts: int = STARTS_PER_ROUND) -> float:
    """Seconds for the fastest of ``starts`` fresh interpreters to run ``code``."""
    fastest = float("inf")
    for _ in range(starts):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def _compare_code(
    name: str, code: str, baseline_name: str, baseline_code: str, rounds: int
) -> tuple[Comparison, float]:
    """Time ``code`` against ``baseline_code``; return the comparison and the
    median extra milliseconds."""
    _time_interpreter(baseline_code)
    _time_interpreter(code)
    comparison = Comparison(name, baseline_name, unit="starts/s")
    extra_ms = []
    for _ in range(rounds):
        base = _time_interpreter(baseline_code)
        candidate = _time_interpreter(code)
        comparison.baseline_rates.append(1 / base)
        comparison.candidate_rates.append(1 / candidate)
        extra_ms.append((candidate - base) * 1000)
    return comparison, statistics.median(extra_ms)


def _installed_plugin() -> str | None:
    """The name of an installed plugin adapter, if any, preferring redis."""
    import missive.adapters

    names = [name for name in missive.adapters.names() if name != "stdin"]
    for preferred in ("redis", "wsgi"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def run(quick: bool) -> list[Comparison]:
    rounds = 3 if quick else 15
    results = []

    comparison, extra = _compare_code(
        "python -c 'import missive'", "import missive", "python -c pass", "pass", rounds
    )
    comparison.note = f"adds {extra:.1f} ms (budget {IMPORT_BUDGET_MS:g} ms)"
    results.append(_with_budget(comparison, extra, IMPORT_BUDGET_MS))

    comparison, extra = _compare_code(
        "load('stdin') after import missive",
        "import missive.adapters; missive.adapters.load('stdin')",
        "import missive",
        "import missive.adapters",
        rounds,
    )
    comparison.note = f"adds {extra:.1f} ms (budget {BUILTIN_LOAD_BUDGET_MS:g} ms)"
    results.append(_with_budget(comparison, extra, BUILTIN_LOAD_BUDGET_MS))

    plugin = _installed_plugin()
    if plugin is not None:
        comparison, extra = _compare_code(
            f"load({plugin!r}) after import missive",
            f"import missive.adapters; missive.adapters.load({plugin!r})",
            "import missive",
            "import missive.adapters",
            rounds,
        )
        comparison.note = f"adds {extra:.1f} ms, including the plugin's dependencies"
        results.append(comparison)
    return results


def _with_budget(
    comparison: Comparison, extra_ms: float, budget_ms: float
) -> Comparison:
    """Judge the comparison by the extra milliseconds, the budget's own unit."""
    comparison.extra_ms = extra_ms
    comparison.budget_ms = budget_ms
    return comparison
