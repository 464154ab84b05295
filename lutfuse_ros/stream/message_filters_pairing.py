"""``message_filters.ApproximateTimeSynchronizer`` behind the pairer interface of ``pairing``.

Used only when the node's ``sync.use_message_filters`` asks for it and a ROS install provides
``message_filters`` (:func:`lutfuse_ros.stream.pairing.make_synchroniser` chooses); the
package's own :class:`~lutfuse_ros.stream.pairing.ApproximateTimePairer` is the default.
"""

from __future__ import annotations

import operator
import threading
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from lutfuse_ros.errors import InputError
from lutfuse_ros.stream.pairing import (ClockJumpCallback, MatchedPair, SyncCounters,
                                        jump_back_threshold_ns, seconds_to_ns)


class MessageFiltersAdapter:
    """``message_filters.ApproximateTimeSynchronizer`` behind the :class:`PairSynchroniser` API.

    Items are wrapped with a ``header.stamp`` (thermal: offset applied) and pushed through two
    bare ``SimpleFilter`` inputs; the synchroniser's callback collects the pairs each call made.
    A stamp more than ``jump_back_reset`` seconds behind the newest of its input replaces the
    inputs and the synchroniser by fresh ones (message_filters would otherwise hold on to the
    old timeline).
    """

    def __init__(self, message_filters: Any, slop: float, queue_size: int, offset: float,
                 allow_headerless: bool, *, jump_back_reset: float = 1.0,
                 on_clock_jump: ClockJumpCallback | None = None) -> None:
        from rclpy.time import Time

        self._jump_back_ns = jump_back_threshold_ns(jump_back_reset, slop)
        self._time = Time
        self._message_filters = message_filters
        self._settings = (queue_size, slop, allow_headerless)
        self._build()
        self._offsets_ns = (0, seconds_to_ns(offset))
        self._allow_headerless = allow_headerless
        self._on_clock_jump = on_clock_jump
        self._newest_ns: list[int | None] = [None, None]
        self._collected: list[MatchedPair] = []
        self._counters = SyncCounters()
        self._lock = threading.Lock()

    def _build(self) -> None:
        queue_size, slop, allow_headerless = self._settings
        self._inputs = (self._message_filters.SimpleFilter(),
                        self._message_filters.SimpleFilter())
        self._synchroniser = self._message_filters.ApproximateTimeSynchronizer(
            list(self._inputs), queue_size, slop, allow_headerless=allow_headerless)
        self._synchroniser.registerCallback(self._collect)

    @property
    def counters(self) -> SyncCounters:
        with self._lock:
            return replace(self._counters)

    def add_visible(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        return self._feed(0, stamp_ns, item)

    def add_thermal(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        return self._feed(1, stamp_ns, item)

    def _feed(self, index: int, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        if stamp_ns is None:
            if not self._allow_headerless:
                raise InputError("frame has no stamp and allow_headerless is False")
            stamp_ns = time.time_ns()
        stamp_ns = operator.index(stamp_ns)
        stamp = self._time(nanoseconds=stamp_ns + self._offsets_ns[index])
        wrapped = SimpleNamespace(header=SimpleNamespace(stamp=stamp), item=item,
                                  stamp_ns=stamp_ns)
        jumped_from_ns = None
        with self._lock:
            newest = self._newest_ns[index]
            if newest is not None and stamp_ns < newest - self._jump_back_ns:
                jumped_from_ns = newest
                self._build()
                self._newest_ns = [None, None]
                self._counters.resets += 1
            self._newest_ns[index] = stamp_ns if self._newest_ns[index] is None \
                else max(stamp_ns, self._newest_ns[index])
            self._inputs[index].signalMessage(wrapped)
            pairs, self._collected = self._collected, []
            self._counters.matched += len(pairs)
        if jumped_from_ns is not None and self._on_clock_jump is not None:
            self._on_clock_jump(("visible", "thermal")[index], jumped_from_ns, stamp_ns)
        return pairs

    def _collect(self, visible: Any, thermal: Any) -> None:
        self._collected.append(MatchedPair(visible.item, thermal.item, visible.stamp_ns,
                                           thermal.stamp_ns))
