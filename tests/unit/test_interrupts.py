"""An interrupt waits until a step that must not be cut in half is done."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tdi import interrupts


def test_sigint_waits_for_the_block_then_interrupts() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_gets_its_own_handler_back() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_block_without_a_signal_changes_nothing() -> None:
    with interrupts.deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_it_is_a_plain_block() -> None:
    ran: list[bool] = []

    def work() -> None:
        with interrupts.deferred():  # signal.signal would raise ValueError here
            ran.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert ran == [True]
