"""Measure Missive against a baseline in the same run, as ratios.

Absolute rates drift on shared machines; the ratio of two rates measured
back to back in one process drifts far less.  A :class:`Comparison` runs the
baseline and the candidate alternately for several rounds and reports the
median ratio with its min and max.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A workload: run ``count`` operations and return how many per second.
Workload = Callable[[int], float]


@dataclass
class Comparison:
    """A candidate's rate against a baseline's, round by round."""

    name: str
    baseline: str
    unit: str = "msg/s"
    #: The smallest acceptable median ratio, or ``None`` when only reported.
    target: float | None = None
    candidate_rates: list[float] = field(default_factory=list)
    baseline_rates: list[float] = field(default_factory=list)
    note: str = ""
    #: For a target stated in time rather than as a ratio: the median extra
    #: milliseconds measured, and the most allowed.
    extra_ms: float | None = None
    budget_ms: float | None = None

    @property
    def ratios(self) -> list[float]:
        return [
            candidate / baseline
            for candidate, baseline in zip(
                self.candidate_rates, self.baseline_rates, strict=True
            )
        ]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def met(self) -> bool | None:
        if self.budget_ms is not None and self.extra_ms is not None:
            return self.extra_ms <= self.budget_ms
        return None if self.target is None else self.ratio >= self.target

    def describe_target(self) -> str:
        """The target and whether it was met, for tables."""
        if self.budget_ms is not None and self.extra_ms is not None:
            verdict = "met" if self.met else "MISSED"
            return f"+{self.extra_ms:.1f} ms <= {self.budget_ms:g} ms {verdict}"
        if self.target is None:
            return "-"
        return f">= {self.target} {'met' if self.met else 'MISSED'}"


def compare(
    name: str,
    *,
    baseline_name: str,
    candidate: Workload,
    baseline: Workload,
    count: int,
    rounds: int,
    target: float | None = None,
    unit: str = "msg/s",
    note: str = "",
) -> Comparison:
    """Run ``baseline`` and ``candidate`` alternately, ``rounds`` times each.

    One untimed warm-up of each comes first.
    """
    result = Comparison(name, baseline_name, unit, target, note=note)
    baseline(max(1, count // 10))
    candidate(max(1, count // 10))
    for _ in range(rounds):
        result.baseline_rates.append(baseline(count))
        result.candidate_rates.append(candidate(count))
    return result


def rate(count: int, started: float) -> float:
    """Operations per second since ``started`` (a ``perf_counter`` value)."""
    elapsed = time.perf_counter() - started
    return count / elapsed if elapsed > 0 else float("inf")
