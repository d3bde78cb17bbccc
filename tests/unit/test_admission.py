"""The local platform's API admits its requests a few at a time, in the order they came (issue
11, finding 2): with every request handled at once, the event runner got a twentieth of the one
Python process and back ordering fell a minute behind twenty clients; with a plain semaphore,
some requests of fifty clients waited more than a minute (its wake-ups are in no order)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from local.server import API_CONCURRENCY, _Admission


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_issue_11_requests_are_admitted_a_few_at_a_time_in_the_order_they_came() -> None:
    admission = _Admission(2)
    admitted: list[int] = []
    leave = {n: threading.Event() for n in range(6)}

    def request(n: int) -> None:
        with admission:
            admitted.append(n)
            leave[n].wait()

    threads = []
    for n in range(6):  # each one queued before the next comes
        thread = threading.Thread(target=request, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
        until(lambda: len(admitted) + len(admission._queue) == len(threads))
    assert admitted == [0, 1]  # two at a time; the others wait
    for n in range(4):
        expected = list(range(n + 3))
        leave[n].set()  # one leaves: the longest waiting comes in
        until(lambda: len(admitted) == len(expected))  # noqa: B023 - read at once
        assert admitted == expected
    for n in (4, 5):
        leave[n].set()
    for thread in threads:
        thread.join(timeout=10)
    assert admission._free == 2 and not admission._queue
    assert API_CONCURRENCY >= 2
