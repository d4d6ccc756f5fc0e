"""The dirwatch adapter passes Missive's conformance kit, in both nack modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from missive_dirwatch import DirectoryAdapter, drop

from missive import Adapter, Processor, RawMessage
from missive.testing import AdapterContract, TransportOutcome

pytest_plugins = ["missive.testing"]


class DirectoryContract(AdapterContract):
    """How to build the adapter, publish a file, and see where it went."""

    on_nack = "retry"

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path / "spool"

    def make_adapter(self, processor: Processor[Any]) -> Adapter[Any]:
        return DirectoryAdapter(
            RawMessage,
            processor,
            self.directory,
            poll_interval=0.05,
            on_nack=self.on_nack,
            retry_delay=0.05,
        )

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        return drop(self.directory, payload)

    def transport_outcome(
        self, adapter: Adapter[Any], receipt: object
    ) -> TransportOutcome:
        assert isinstance(receipt, str)
        if (self.directory / "done" / receipt).exists():
            return "acked"
        if (self.directory / "failed" / receipt).exists():
            return "nacked"
        return None


class TestRetryingDirectoryAdapter(DirectoryContract):
    """A nacked file goes back to incoming/ and is delivered again."""

    redelivers_nacked = True


class TestFailingDirectoryAdapter(DirectoryContract):
    """A nacked file moves to failed/."""

    on_nack = "fail"
