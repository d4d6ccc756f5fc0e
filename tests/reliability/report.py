"""Render the figures of a reliability run as markdown.

    python tests/reliability/report.py REPORT.json > figures.md

``REPORT.json`` is what the suite writes to ``$MISSIVE_RELIABILITY_REPORT``.
Each test's figures become one table, in the issue's order; the output is
what ``docs/reliability.md`` quotes under "Figures of the last full run".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: The issue's numbering, by the start of each test's name.
ORDER = (
    ("test_sigkill_loop", "1. Crash loop on a Redis stream"),
    ("test_kill_around_the_dlq_commit", "2. Kills around the DLQ commit"),
    ("test_processor_reconnects", "3. Redis restarted under the processor"),
    ("test_a_group_removed", "3. Group or stream removed under the processor"),
    ("test_latency_black_hole", "4. Network faults through the proxy"),
    ("test_subscriber_resubscribes", "5. Pub/Sub black hole and burst"),
    ("test_stream_sigterm", "6. Graceful shutdown, streams"),
    ("test_stream_handler_outliving", "6. Graceful shutdown, streams, too slow"),
    ("test_gunicorn_sigterm", "6. Graceful shutdown, WSGI"),
    ("test_eight_writers", "7. SQLite DLQ under contention"),
    ("test_every_message_is_handled", "8. Routing properties"),
    ("test_stream_processor_model", "9. Stream processor model"),
    ("test_oversized_lying", "10. HTTP refusals"),
    ("test_mutated_signed", "10. HTTP mutated signatures"),
    ("test_crafted_pickle", "11. Malicious pickle rows"),
)


def _title(name: str) -> tuple[int, str]:
    for index, (prefix, title) in enumerate(ORDER):
        if name.startswith(prefix):
            variant = name.partition("[")[2].rstrip("]")
            return index, f"{title} ({variant})" if variant else title
    return len(ORDER), name


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "none"
    return str(value)


def render(document: dict[str, Any]) -> str:
    summary = (
        f"Form: **{document['scale']}**, Python {document['python']}, "
        f"{document['cpus']} CPUs, finished {document['finished']}."
    )
    lines = [summary, ""]
    tests = sorted(document["tests"].items(), key=lambda item: _title(item[0]))
    for name, figures in tests:
        lines += [f"### {_title(name)[1]}", "", "| figure | value |", "|---|---|"]
        for key, value in sorted(figures.items()):
            text = _value(value).replace("|", "\\|")
            lines.append(f"| {key.replace('_', ' ')} | {text} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
