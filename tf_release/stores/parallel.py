"""Requests made several at a time, stopped cleanly by Ctrl-C or SIGTERM.

An interrupt raised at an arbitrary point of a thread pool can escape while a request is still
under way, even one the pool never got to join (it lands while the pool starts a thread). A
deploy that then puts SSM back would race that write and lose. So, in the main thread, an
interrupt is held until the calls under way have ended, no call starts after it, and then it is
raised by the handler it was meant for. A second interrupt is not held.
"""

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

AT_ONCE = 8  # objects read or written this many at a time (records, manifests, indexes)
HELD = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")
R = TypeVar("R")


def in_parallel(call: Callable[[T], R], items: Iterable[T], at_once: int = AT_ONCE) -> list[R]:
    """`call` on each item, `at_once` at a time; the results in the items' order.

    The first failure stops new calls and is raised once the calls under way have ended.
    """
    work = list(items)
    done: dict[int, R] = {}
    while len(done) < len(work):  # again only if an interrupt's handler chose to carry on
        failures = _round(call, work, done, at_once)
        if failures:
            raise failures[min(failures)]
    return [done[index] for index in range(len(work))]


def _round(
    call: Callable[[T], R], work: list[T], done: dict[int, R], at_once: int
) -> dict[int, BaseException]:
    """Call on the items not done yet until all are, one fails, or an interrupt comes."""
    failures: dict[int, BaseException] = {}
    with _interrupts_held() as halt:

        def guarded(index: int) -> None:
            if halt.is_set():
                return
            try:
                done[index] = call(work[index])
            except BaseException as error:
                failures[index] = error
                halt.set()

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            for index in range(len(work)):
                if index not in done:
                    pool.submit(guarded, index)
        # the pool has joined its threads: every call has ended or never started
    return failures


@contextmanager
def _interrupts_held() -> Iterator[threading.Event]:
    """Hold SIGINT and SIGTERM while the block runs; set the event when one comes."""
    halt = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield halt  # only the main thread has signal handlers; it is the one interrupted
        return
    previous: dict[int, Any] = {}
    came: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if came:  # asked twice: the person means it
            _restore(previous)
            previous[signum](signum, frame)
        came.append((signum, frame))
        halt.set()

    for held in HELD:
        handler = signal.getsignal(held)
        if callable(handler):  # a Python handler (SIGINT's KeyboardInterrupt, the CLI's SIGTERM)
            previous[held] = handler
            signal.signal(held, hold)
    try:
        yield halt
    finally:
        _restore(previous)
    if came:
        signum, frame = came[0]
        previous[signum](signum, frame)


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
