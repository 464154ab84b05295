"""Latest-item-wins worker thread and an output rate limiter, independent of ROS.

The fusion node receives pairs on the executor and must never let inference fall behind the
cameras. :class:`LatestItemWorker` keeps a queue of one: a new item replaces a pending one
that has not started yet (counted as dropped, never queued), and a worker thread processes
the newest item. An exception from one item is counted and reported, and the thread goes on
with the next item.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from lutfuse_ros.errors import ConfigError

_NS_PER_S = 1_000_000_000


@dataclass
class WorkerCounters:
    """Running totals of a :class:`LatestItemWorker`.

    Attributes:
        submitted: items handed to :meth:`LatestItemWorker.submit`.
        processed: items whose processing finished without an exception.
        failed: items whose processing raised.
        dropped: pending items replaced by a newer one before they started.
        discarded_on_stop: an item still pending when the worker stopped.
    """

    submitted: int = 0
    processed: int = 0
    failed: int = 0
    dropped: int = 0
    discarded_on_stop: int = 0


class LatestItemWorker:
    """Process the newest submitted item on a background thread (a queue of one).

    Args:
        process: called on the worker thread with each item that is not superseded.
        on_error: called on the worker thread with ``(item, exception)`` when ``process``
            raises; its own exceptions are swallowed (the count in ``failed`` remains).
        name: thread name.
    """

    def __init__(self, process: Callable[[Any], None],
                 on_error: Callable[[Any, Exception], None] | None = None,
                 name: str = "lutfuse-worker") -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._condition = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._counters = WorkerCounters()
        self._last_error: Exception | None = None

    @property
    def counters(self) -> WorkerCounters:
        """Snapshot of the running totals."""
        with self._condition:
            return replace(self._counters)

    @property
    def last_error(self) -> Exception | None:
        """The most recent exception raised by ``process`` (None if none)."""
        with self._condition:
            return self._last_error

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (a worker runs once: create a new one after :meth:`stop`).

        Raises:
            RuntimeError: already started.
        """
        if self._thread is not None:
            raise RuntimeError(f"worker {self._name} was already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Hand over an item, replacing a pending one.

        Args:
            item: anything ``process`` accepts.

        Returns:
            True when a pending item was replaced (and counted as dropped).
        """
        with self._condition:
            replaced = self._has_pending
            self._counters.submitted += 1
            self._counters.dropped += int(replaced)
            self._pending, self._has_pending = item, True
            self._condition.notify()
            return replaced

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or running; return whether that happened in time."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._has_pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    return not (self._has_pending or self._busy)
                self._condition.wait(remaining)
            return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread after the item in progress; a pending item is discarded.

        Args:
            timeout: seconds to wait for the thread to end.

        Returns:
            True when the thread has ended (or never started).
        """
        with self._condition:
            self._stopping = True
            if self._has_pending:
                self._counters.discarded_on_stop += 1
                self._pending, self._has_pending = None, False
            self._condition.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not (self._has_pending or self._stopping):
                    self._condition.wait()
                if self._stopping:
                    self._condition.notify_all()
                    return
                item, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            try:
                self._process(item)
            except Exception as error:  # a bad item must never end the thread
                with self._condition:
                    self._counters.failed += 1
                    self._last_error = error
                self._report(item, error)
            else:
                with self._condition:
                    self._counters.processed += 1
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _report(self, item: Any, error: Exception) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(item, error)
        except Exception:  # the error path must not end the thread either
            pass


class RateLimiter:
    """Let events through at no more than ``max_rate`` per second of their own time.

    Times are the events' stamps (the visible image stamp for the node), so the limit holds
    in bag or simulation time too. Passing events book slots on a grid of ``1 / max_rate``
    and an event passes when it is at or after the next slot, so the average rate is kept
    even when the input rate is not a multiple of it (30 Hz input at ``max_rate`` 20 gives
    20 Hz, not 15 Hz). After a gap of a slot or more, or a clock jump back, the grid restarts
    at the event.

    Args:
        max_rate: events per second; 0 lets everything through.

    Raises:
        ConfigError: negative or non-finite rate.
    """

    def __init__(self, max_rate: float) -> None:
        if not (max_rate >= 0 and max_rate != float("inf")):
            raise ConfigError(f"max_rate must be a finite number >= 0, got {max_rate!r}")
        self._period_ns = int(round(_NS_PER_S / max_rate)) if max_rate > 0 else 0
        self._next_ns: int | None = None
        self._lock = threading.Lock()

    def allow(self, stamp_ns: int) -> bool:
        """Whether an event stamped ``stamp_ns`` passes (and, if so, book its slot)."""
        if self._period_ns == 0:
            return True
        with self._lock:
            due = self._next_ns
            restart = due is None or stamp_ns < due - 2 * self._period_ns \
                or stamp_ns >= due + self._period_ns
            if restart:
                self._next_ns = stamp_ns + self._period_ns
                return True
            if stamp_ns < due:
                return False
            self._next_ns = due + self._period_ns
            return True
