"""Work done several at a time stops cleanly on Ctrl-C: whoever catches the interrupt (a deploy
putting SSM back) never races a write still under way."""

import os
import signal
import threading
import time

import pytest

from tf_release.stores.parallel import in_parallel


@pytest.fixture
def interrupt_at_first_thread_start(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Ctrl-C while the pool starts its first thread, once that thread's call is under way:
    the moment an interrupt used to escape before the pool knew of the thread."""
    assert threading.current_thread() is threading.main_thread()
    under_way = threading.Event()
    real_start = threading.Thread.start
    fired: list[bool] = []

    def start(thread: threading.Thread) -> None:
        real_start(thread)
        if not fired:
            fired.append(True)
            assert under_way.wait(timeout=10)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # Python runs the handler here

    monkeypatch.setattr(threading.Thread, "start", start)
    return under_way


def test_an_interrupt_reaches_the_caller_after_every_call_under_way_has_ended(
    interrupt_at_first_thread_start: threading.Event,
) -> None:
    started: list[str] = []
    ended: list[str] = []

    def write(item: str) -> str:
        started.append(item)
        interrupt_at_first_thread_start.set()
        time.sleep(0.3)
        ended.append(item)
        return item

    with pytest.raises(KeyboardInterrupt):
        in_parallel(write, ["api", "worker", "web"])
    assert started and sorted(ended) == sorted(started)


def test_no_call_starts_after_an_interrupt(
    interrupt_at_first_thread_start: threading.Event,
) -> None:
    started: list[str] = []

    def write(item: str) -> str:
        started.append(item)
        interrupt_at_first_thread_start.set()
        time.sleep(0.3)
        return item

    with pytest.raises(KeyboardInterrupt):
        in_parallel(write, ["api", "worker", "web"], at_once=1)
    assert started == ["api"]


def test_sigterm_is_raised_by_its_own_handler_after_the_calls_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminated(Exception):
        pass

    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        started: list[str] = []
        ended: list[str] = []

        def write(item: str) -> str:
            started.append(item)
            if item == "api":
                os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            ended.append(item)
            return item

        with pytest.raises(Terminated):
            in_parallel(write, ["api", "worker"])
        assert "api" in ended and sorted(ended) == sorted(started)
        assert signal.getsignal(signal.SIGTERM) is on_sigterm
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_results_come_in_the_items_order() -> None:
    assert in_parallel(lambda n: n * n, range(20)) == [n * n for n in range(20)]


def test_the_first_failure_stops_new_calls_and_is_raised_once_those_under_way_end() -> None:
    started: list[int] = []
    ended: list[int] = []

    def call(n: int) -> int:
        started.append(n)
        if n == 1:
            raise ValueError("one")
        time.sleep(0.2)
        ended.append(n)
        return n

    with pytest.raises(ValueError, match="one"):
        in_parallel(call, range(6), at_once=2)
    assert sorted(started) == [0, 1] and ended == [0]


def test_a_handler_that_carries_on_gets_every_result(
    interrupt_at_first_thread_start: threading.Event,
) -> None:
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:

        def square(n: int) -> int:
            interrupt_at_first_thread_start.set()
            time.sleep(0.05)
            return n * n

        assert in_parallel(square, range(5), at_once=1) == [0, 1, 4, 9, 16]
        assert noted == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
