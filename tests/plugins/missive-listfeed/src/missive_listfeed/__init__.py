"""The ``listfeed`` adapter: feed a fixed list of payloads to a processor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from missive import Message, ProcessingContext, Processor, RunnableAdapter, hookimpl

M = TypeVar("M", bound=Message)


class ListFeedAdapter(RunnableAdapter[M]):
    """Hand each payload of a list to the processor, then return."""

    cli_options = ("payloads",)

    def __init__(
        self, message_cls: type[M], processor: Processor[M], payloads: Iterable[bytes]
    ) -> None:
        super().__init__(message_cls, processor)
        self.payloads = list(payloads)
        self.acked: list[bytes] = []
        self.nacked: list[bytes] = []

    @classmethod
    def from_options(
        cls, message_cls: type[M], processor: Processor[M], options: Mapping[str, str]
    ) -> ListFeedAdapter[M]:
        payloads = options.get("payloads", "")
        return cls(
            message_cls, processor, [p.encode() for p in payloads.split(",") if p]
        )

    def consume(self, processing_ctx: ProcessingContext[M]) -> None:
        for payload in self.payloads:
            if self.stopping:
                return
            processing_ctx.handle(self.message_cls(payload))

    def ack(self, message: M) -> None:
        self.acked.append(message.raw_data)
        print(f"listfeed acked {message.raw_data.decode()}")

    def nack(self, message: M) -> None:
        self.nacked.append(message.raw_data)
        print(f"listfeed nacked {message.raw_data.decode()}")


@hookimpl
def missive_adapters() -> dict[str, Any]:
    return {"listfeed": ListFeedAdapter}
