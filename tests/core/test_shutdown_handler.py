"""ShutdownHandler: the flag that signals and threads set."""

from __future__ import annotations

import os
import signal
import threading

from missive.shutdown_handler import ShutdownHandler


def test_flag_starts_clear_and_set_flag_sets_it():
    handler = ShutdownHandler()

    assert not handler.should_exit()
    handler.set_flag()
    assert handler.should_exit()


def test_wait_for_flag_returns_when_another_thread_sets_it():
    handler = ShutdownHandler()
    timer = threading.Timer(0.05, handler.set_flag)
    timer.start()

    assert handler.wait_for_flag(timeout=5) is True
    timer.join()


def test_wait_for_flag_times_out_false():
    assert ShutdownHandler().wait_for_flag(timeout=0.01) is False


def test_sigterm_sets_the_flag_and_calls_back_then_handlers_are_restored():
    called = []
    handler = ShutdownHandler(callback=lambda: called.append(True))
    previous = signal.getsignal(signal.SIGTERM)

    handler.enable()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert handler.wait_for_flag(timeout=5)
    finally:
        handler.disable()

    assert called == [True]
    assert signal.getsignal(signal.SIGTERM) is previous
