"""Issue 7, test 8: routing properties, checked by hypothesis.

A processor gets a random set of matchers (plain callables that accept a set
of keys or raise on some, and indexed ``missive.matchers`` equality
matchers), each with a handler that acks, nacks, raises, does neither, or
acks twice; sometimes hooks too, one of which may raise.  Random messages go
through it.  A model computes what must happen to each one, and the
adapter's record must agree: handled by exactly one handler or dead-lettered
with the right reason, and acked at most once, never both acked and nacked.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_testing import SCALE, Figures

from missive import HandlingContext, JSONMessage, Processor
from missive.adapters import Adapter
from missive.contexts import Outcome
from missive.dlq.memory import MemoryDLQ
from missive.matchers import field

#: What the examples exercised, for the report.
_TOTALS: Counter[str] = Counter()

BEHAVIOURS = ("ack", "nack", "raise", "neither", "ack-twice")
KEYS = st.integers(min_value=0, max_value=4)


class _Recorder(Adapter[JSONMessage]):
    """Counts acks and nacks per message id."""

    def __init__(self, processor: Processor[JSONMessage]) -> None:
        super().__init__(processor)
        self.acks: Counter[bytes] = Counter()
        self.nacks: Counter[bytes] = Counter()

    def ack(self, message: JSONMessage) -> None:
        self.acks[message.message_id] += 1

    def nack(self, message: JSONMessage) -> None:
        self.nacks[message.message_id] += 1


@dataclass(frozen=True)
class Route:
    indexed: bool
    accepts: frozenset[int]
    raises_on: frozenset[int]
    behaviour: str


class MatcherFailed(Exception):
    pass


class HandlerFailed(Exception):
    pass


routes_strategy = st.lists(
    st.builds(
        Route,
        indexed=st.booleans(),
        accepts=st.frozensets(KEYS, max_size=2),
        raises_on=st.frozensets(KEYS, max_size=1),
        behaviour=st.sampled_from(BEHAVIOURS),
    ),
    max_size=5,
)


def _opaque_matcher(route: Route, index: int) -> Any:
    def matcher(message: JSONMessage) -> bool:
        key = message.get_json()["key"]
        if key in route.raises_on:
            raise MatcherFailed(f"matcher {index} refuses key {key}")
        return key in route.accepts

    matcher.__qualname__ = f"matcher_{index}"
    return matcher


def _handler(route: Route, index: int, calls: Counter[tuple[bytes, int]]) -> Any:
    def handler(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        calls[(message.message_id, index)] += 1
        if route.behaviour in ("ack", "ack-twice"):
            ctx.ack()
        if route.behaviour == "ack-twice":
            ctx.ack()
        elif route.behaviour == "nack":
            ctx.nack()
        elif route.behaviour == "raise":
            raise HandlerFailed(f"handler {index} failed")

    handler.__qualname__ = f"handler_{index}"
    return handler


def _effective(routes: list[Route]) -> list[tuple[int, Route]]:
    """The routes a processor keeps: an indexed matcher equal to an earlier
    one (same accepted keys) cannot be registered twice."""
    kept: list[tuple[int, Route]] = []
    seen: set[frozenset[int]] = set()
    for index, route in enumerate(routes):
        if route.indexed:
            if route.accepts in seen or not route.accepts:
                continue
            seen.add(route.accepts)
        kept.append((index, route))
    return kept


def _expected(routes: list[tuple[int, Route]], key: int) -> tuple[str, Any]:
    """What the model says happens to a message with ``key``."""
    accepted = [
        (index, route)
        for index, route in routes
        if key in route.accepts and not (not route.indexed and key in route.raises_on)
    ]
    raising = [
        index for index, route in routes if not route.indexed and key in route.raises_on
    ]
    if raising:
        # A second accepting matcher may be met before the raising one.
        if len(accepted) > 1:
            return "dead-letter", ("matcher", "multiple matching handlers")
        return "dead-letter", ("matcher",)
    if not accepted:
        return "dead-letter", ("no matching handlers",)
    if len(accepted) > 1:
        return "dead-letter", ("multiple matching handlers",)
    return "handled", accepted[0]


@settings(
    max_examples=SCALE.hypothesis_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    routes=routes_strategy,
    data=st.data(),
    with_dlq=st.booleans(),
    hooks=st.sampled_from(["none", "both", "after-raises"]),
)
def _check_routing(
    routes: list[Route], data: st.DataObject, with_dlq: bool, hooks: str
) -> None:
    # Half the keys, where possible, are routable to exactly one handler.
    effective = _effective(routes)
    routable = [k for k in range(5) if _expected(effective, k)[0] == "handled"]
    key = st.one_of(st.sampled_from(routable), KEYS) if routable else KEYS
    keys = data.draw(st.lists(key, min_size=1, max_size=20), label="keys")
    _TOTALS["examples"] += 1
    _TOTALS["messages"] += len(keys)
    processor: Processor[JSONMessage] = Processor()
    dlq: MemoryDLQ[JSONMessage] = MemoryDLQ()
    if with_dlq:
        processor.set_dlq(dlq)
    calls: Counter[tuple[bytes, int]] = Counter()
    for index, route in effective:
        matcher = (
            field("key").one_of(sorted(route.accepts))
            if route.indexed
            else _opaque_matcher(route, index)
        )
        processor.handle_for(matcher)(_handler(route, index, calls))
    if hooks != "none":

        @processor.before_handling
        def before(ctx: Any, handling: HandlingContext[JSONMessage]) -> None:
            handling.state.seen = True

        @processor.after_handling
        def after(ctx: Any, handling: HandlingContext[JSONMessage]) -> None:
            if hooks == "after-raises":
                raise HandlerFailed("the after hook failed")

    adapter = _Recorder(processor)
    outcomes: dict[bytes, Any] = {}
    messages = [
        JSONMessage(json.dumps({"key": key}).encode(), b"m%d" % number)
        for number, key in enumerate(keys)
    ]
    with processor.context(JSONMessage, adapter) as ctx:
        for message in messages:
            try:
                outcomes[message.message_id] = ctx.handle(message)
            except Exception as exc:
                outcomes[message.message_id] = exc

    for message, key in zip(messages, keys, strict=True):
        mid = message.message_id
        kind, detail = _expected(effective, key)
        _TOTALS[
            "routing failed" if kind == "dead-letter" else outcome_name(outcomes[mid])
        ] += 1
        handlers_called = [
            i for (m, i), n in calls.items() if m == mid for _ in range(n)
        ]
        outcome = outcomes[mid]

        # Never acked twice, never both acked and nacked.
        assert adapter.acks[mid] <= 1
        assert not (adapter.acks[mid] and adapter.nacks[mid])

        if kind == "dead-letter":
            assert handlers_called == []
            if with_dlq:
                assert outcome is Outcome.DEAD_LETTERED
                assert dlq[mid][1].startswith(detail)
                assert adapter.acks[mid] == 1
            else:
                assert isinstance(outcome, Exception)
                assert adapter.acks[mid] == adapter.nacks[mid] == 0
            continue

        index, route = detail
        assert handlers_called == [index]
        fails = route.behaviour in ("raise", "ack-twice") or hooks == "after-raises"
        if fails and with_dlq:
            assert outcome is Outcome.DEAD_LETTERED
            assert dlq[mid][1] == _failure_reason(route, index, hooks, mid)
            assert adapter.acks[mid] == 1
        elif fails:
            assert isinstance(outcome, Exception)
            assert adapter.acks[mid] == adapter.nacks[mid] == 0
        elif route.behaviour == "ack":
            assert outcome is Outcome.ACKED
            assert adapter.acks[mid] == 1
            assert mid not in dlq
        else:
            assert outcome is Outcome.NACKED
            assert (adapter.acks[mid], adapter.nacks[mid]) == (0, 1)
            assert mid not in dlq


def test_every_message_is_handled_once_or_dead_lettered_and_acked_at_most_once(
    figures: Figures,
) -> None:
    _TOTALS.clear()

    _check_routing()

    figures["examples"] = _TOTALS.pop("examples")
    figures["messages"] = _TOTALS.pop("messages")
    figures["expected_outcomes"] = dict(sorted(_TOTALS.items()))


def outcome_name(outcome: Any) -> str:
    return outcome.value if isinstance(outcome, Outcome) else "raised"


def _failure_reason(route: Route, index: int, hooks: str, message_id: bytes) -> str:
    """The DLQ reason of a handled message whose processing failed: the
    handler's exception first, else the after hook's."""
    if route.behaviour == "raise":
        return f"handler {index} failed"
    if route.behaviour == "ack-twice":
        return f"message {message_id!r} was already acked"
    return "the after hook failed"
