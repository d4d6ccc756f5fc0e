"""Issue 7, test 9: a stateful model of a stream processor (hypothesis).

Hypothesis drives real :class:`~missive_redis.RedisStreamAdapter` instances
against a private Redis one step at a time: publish an entry (one that is
acked, one that raises, one that is always nacked), let a consumer fetch and
handle a batch, flush its acks, crash it (its unsent acks are lost), start a
consumer under the same or a new name, and claim idle entries.  After every
step:

- every published entry is handled, dead-lettered, pending, or not yet
  delivered;
- every entry acknowledged in Redis was handled or stored in the DLQ first,
  and the adapter is never asked to ack an entry before that.

At the end a consumer drains the stream: nothing may be left.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from reliability_testing import SCALE, Figures, PersistentRedis

from missive import HandlingContext, Processor, RawMessage
from missive.dlq.memory import MemoryDLQ
from missive_redis import RedisStreamAdapter

GROUP = "model"
NAMES = ("alpha", "beta", "gamma")
MAX_DELIVERIES = 3


class _CheckedAdapter(RedisStreamAdapter[RawMessage]):
    """A stream adapter that checks each ack against the model."""

    model: StreamModel

    def ack(self, message: RawMessage) -> None:
        # Recorded, not asserted: the adapter logs and swallows what a
        # handler's ack raises, and the invariant must still see it.
        mid = message.message_id.decode()
        if mid not in self.model.handled and mid not in self.model.dlq_ids():
            self.model.early_acks.append(mid)
        super().ack(message)

    def _flush_acks(self) -> None:
        sent = [
            f"{stream}/{entry_id.decode()}"
            for stream, ids in self._acks.items()
            for entry_id in ids
        ]
        super()._flush_acks()
        self.model.xacked.update(sent)


class StreamModel(RuleBasedStateMachine):
    url = ""
    #: What the runs exercised, for the report.
    totals: Counter[str] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.client = redis.Redis.from_url(self.url)
        self.stream = f"reliability:model:{uuid.uuid4().hex[:10]}"
        self.published: dict[str, str] = {}
        self.handled: set[str] = set()
        self.xacked: set[str] = set()
        self.early_acks: list[str] = []
        self.dlq: MemoryDLQ[RawMessage] = MemoryDLQ()
        self.processor: Processor[RawMessage] = Processor()
        self.processor.set_dlq(self.dlq)
        self.processor.handle_for(lambda message: True)(self._handle)
        self.consumers: dict[str, tuple[_CheckedAdapter, Any]] = {}
        self.crashes = 0

    # --- the processor under test --------------------------------------------

    def _handle(self, message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
        if message.raw_data == b"raise":
            raise RuntimeError("poisoned")
        if message.raw_data == b"nack":
            ctx.nack()
            return
        self.handled.add(message.message_id.decode())
        ctx.ack()

    def dlq_ids(self) -> set[str]:
        return {key.decode() for key in self.dlq}

    def _start(self, name: str) -> None:
        adapter = _CheckedAdapter(
            RawMessage,
            self.processor,
            self.stream,
            group=GROUP,
            consumer=name,
            url=self.url,
            batch_size=3,
            block_ms=1,
            claim_idle_ms=0,
            claim_interval_ms=10**9,
            max_deliveries=MAX_DELIVERIES,
            ack_delay_ms=10**6,
        )
        adapter.model = self
        adapter._client = redis.Redis.from_url(self.url)
        adapter._create_groups()
        adapter._start_pending_pass()
        adapter._claim_due = float("inf")
        ctx = self.processor.context(RawMessage, adapter).__enter__()
        self.consumers[name] = (adapter, ctx)

    def _step(self, name: str) -> None:
        adapter, ctx = self.consumers[name]
        entries = adapter._fetch()
        if entries:
            adapter._process(ctx, entries)

    # --- rules ----------------------------------------------------------------

    @rule(behaviour=st.sampled_from(["ack", "ack", "ack", "raise", "nack"]))
    def publish(self, behaviour: str) -> None:
        entry_id = self.client.xadd(self.stream, {"data": behaviour.encode()})
        self.published[f"{self.stream}/{entry_id.decode()}"] = behaviour

    @rule(name=st.sampled_from(NAMES))
    def start(self, name: str) -> None:
        if name not in self.consumers:
            self._start(name)

    @precondition(lambda self: self.consumers)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        self._step(data.draw(st.sampled_from(sorted(self.consumers))))

    @precondition(lambda self: self.consumers)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        adapter, _ = self.consumers[data.draw(st.sampled_from(sorted(self.consumers)))]
        adapter._flush_acks()

    @precondition(lambda self: self.consumers)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """SIGKILL: the acks still buffered are never sent."""
        name = data.draw(st.sampled_from(sorted(self.consumers)))
        adapter, _ = self.consumers.pop(name)
        adapter._client.close()
        self.crashes += 1

    @precondition(lambda self: self.consumers)
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.consumers)))
        adapter, _ = self.consumers[name]
        adapter._claim_due = 0.0
        adapter._claim_cursors.clear()
        self._step(name)
        adapter._claim_due = float("inf")

    # --- invariants -----------------------------------------------------------

    def _pending(self) -> set[str]:
        try:
            pending = self.client.xpending_range(self.stream, GROUP, "-", "+", 10_000)
        except redis.ResponseError:  # no consumer created the group yet
            return set()
        return {f"{self.stream}/{p['message_id'].decode()}" for p in pending}

    def _undelivered(self) -> set[str]:
        groups = self.client.xinfo_groups(self.stream) if self.published else []
        if not groups:
            return set(self.published)
        last = _entry_key(groups[0]["last-delivered-id"].decode())
        return {m for m in self.published if _entry_key(m.split("/")[-1]) > last}

    @invariant()
    def nothing_is_lost(self) -> None:
        settled = self.handled | self.dlq_ids()
        accounted = settled | self._pending() | self._undelivered()
        assert set(self.published) <= accounted

    @invariant()
    def no_ack_before_the_handler_or_the_dlq(self) -> None:
        assert self.early_acks == []
        assert self.xacked <= self.handled | self.dlq_ids()

    def teardown(self) -> None:
        self.totals["runs"] += 1
        self.totals["published"] += len(self.published)
        self.totals["crashes"] += self.crashes
        self.totals["handled"] += len(self.handled)
        self.totals["dead_lettered"] += len(self.dlq)
        try:
            if self.published:
                self._drain()
        finally:
            for adapter, _ in self.consumers.values():
                adapter._client.close()
            self.client.delete(self.stream)
            self.client.close()

    def _drain(self) -> None:
        """A consumer claims and handles everything left: nothing may stay."""
        if "drain" not in self.consumers:
            self._start("drain")
        adapter, _ = self.consumers["drain"]
        for _ in range(10 * MAX_DELIVERIES + len(self.published)):
            adapter._claim_due = 0.0
            adapter._claim_cursors.clear()
            self._step("drain")
            adapter._flush_acks()
            if not self._pending() and not self._undelivered():
                break
        assert self._pending() == set()
        assert set(self.published) == self.handled | self.dlq_ids()
        for mid, behaviour in self.published.items():
            if behaviour != "ack":
                assert mid in self.dlq_ids()


def _entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def test_stream_processor_model_loses_nothing_and_never_acks_early(
    shared_private_redis: PersistentRedis, figures: Figures
) -> None:
    StreamModel.url = shared_private_redis.url
    StreamModel.totals.clear()

    run_state_machine_as_test(
        StreamModel,
        settings=settings(
            max_examples=SCALE.state_machine_examples,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

    for key, value in sorted(StreamModel.totals.items()):
        figures[key] = value
    assert StreamModel.totals["crashes"] > 0
