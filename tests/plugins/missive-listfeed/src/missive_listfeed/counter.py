"""An outcome observer: counts what became of each message, per outcome."""

from __future__ import annotations

from collections import Counter
from typing import Any

from missive import hookimpl

outcomes: Counter[str] = Counter()


@hookimpl
def missive_message_outcome(
    processing_ctx: Any, message: Any, outcome: Any, reason: str | None
) -> None:
    outcomes[outcome.value] += 1
