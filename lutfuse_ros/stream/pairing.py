"""Approximate-time pairing of visible and thermal frames, independent of ROS.

:class:`ApproximateTimePairer` has the contract of ``message_filters.ApproximateTimeSynchronizer``
for two streams (pairs are at most ``slop`` apart, queues hold at most ``queue_size`` frames)
and, like the C++ ``ApproximateTime`` policy rather than the Python one, emits a pair only once
no frame still to come could give either member a closer partner. ``add_visible`` /
``add_thermal`` return the pairs that call completed, oldest first (no callbacks), so the caller
decides where the work runs.

Matching rule, on the *matching stamps* (visible stamp; thermal stamp + ``offset``), repeated
while both queues hold frames. Let ``E`` be the earlier head, ``L`` the later one and ``E1`` the
frame after ``E`` on its stream:

1. A head more than ``slop`` older than the other head can never pair (every other frame is
   later still) and is dropped.
2. ``L`` is ``E``'s nearest partner. If ``E1`` is strictly closer to ``L`` than ``E`` is, ``E``
   is dropped; otherwise ``(E, L)`` is emitted (ties go to the older frame).
3. Without ``E1``, the pair waits for the next frame of ``E``'s stream unless that frame cannot
   be closer: it is at least ``min_*_interval`` after ``E`` (0 by default). A queue about to
   exceed ``queue_size`` forces the waiting pair out; failing that its oldest frame is dropped.

Output stamps increase strictly on each stream: a frame at or before its stream's last emitted
stamp is counted as late and discarded, as is a second frame with a stamp already queued.
Frames that arrive out of order are sorted into their queue and pair normally while their
partner is still to be decided; rule 1 assumes each stream arrives roughly in stamp order, so a
frame delivered after its partner's successor was already handled loses its pair.

A *clock jump back*, a frame more than ``jump_back_reset`` seconds older than the newest stamp
seen on its stream (a bag looping, a sensor clock resync), clears all state (queued frames count
as dropped), counts a reset, reports it to the optional ``on_clock_jump`` callback, and pairing
restarts from that frame. Without this rule every frame after a loop would be late and the
pairer would stall. ``jump_back_reset`` must exceed ``slop``.

Each call costs O(queue_size).
"""

from __future__ import annotations

import math
import operator
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, NamedTuple, Protocol

from lutfuse_ros.errors import ConfigError, InputError

_NS_PER_S = 1_000_000_000


class MatchedPair(NamedTuple):
    """One synchronised pair.

    Attributes:
        visible: the visible-stream item as it was added.
        thermal: the thermal-stream item as it was added.
        visible_stamp_ns: stamp given with ``visible`` (ns).
        thermal_stamp_ns: stamp given with ``thermal`` (ns), *without* the offset.
    """

    visible: Any
    thermal: Any
    visible_stamp_ns: int
    thermal_stamp_ns: int


@dataclass
class SyncCounters:
    """Running totals since construction (a :meth:`reset` keeps them).

    Attributes:
        matched: pairs emitted.
        dropped_visible: visible frames discarded unmatched (no partner within slop, a closer
            frame took the partner, queue overflow, cleared by a reset).
        dropped_thermal: the same for thermal frames.
        late_or_out_of_order: frames rejected on arrival for being behind the output (or a
            duplicate stamp).
        resets: clock jumps back that cleared the state.
    """

    matched: int = 0
    dropped_visible: int = 0
    dropped_thermal: int = 0
    late_or_out_of_order: int = 0
    resets: int = 0


#: ``on_clock_jump(stream, newest_ns, stamp_ns)``: ``stream`` (``visible``/``thermal``) went back
#: from its newest stamp ``newest_ns`` to ``stamp_ns`` (both as given, offset not applied).
ClockJumpCallback = Callable[[str, int, int], None]


class PairSynchroniser(Protocol):
    """What the node needs from a synchroniser; both implementations here satisfy it."""

    def add_visible(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        """Add a visible frame; return the pairs this call completed."""

    def add_thermal(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        """Add a thermal frame; return the pairs this call completed."""

    @property
    def counters(self) -> SyncCounters:
        """Snapshot of the running totals."""


class _Frame(NamedTuple):
    match_ns: int  # stamp used for matching (thermal: offset applied)
    stamp_ns: int  # stamp as given
    item: Any


@dataclass
class _Stream:
    """One input's queue (sorted by ``match_ns``) and bookkeeping."""

    is_visible: bool
    offset_ns: int
    min_interval_ns: int
    queue: deque[_Frame] = field(default_factory=deque)
    last_emitted_ns: int | None = None
    newest_ns: int | None = None

    def clear(self) -> int:
        """Forget everything; return how many queued frames were discarded."""
        discarded = len(self.queue)
        self.queue.clear()
        self.last_emitted_ns = self.newest_ns = None
        return discarded

    def insert(self, frame: _Frame) -> bool:
        """Insert keeping the queue sorted; ``False`` (and no insert) for a duplicate stamp."""
        index = len(self.queue)
        while index > 0 and self.queue[index - 1].match_ns > frame.match_ns:
            index -= 1
        if index > 0 and self.queue[index - 1].match_ns == frame.match_ns:
            return False
        self.queue.insert(index, frame)
        return True


class ApproximateTimePairer:
    """Pair visible and thermal frames whose stamps are within ``slop`` (rules: module doc).

    Thread-safe: the ``add_*`` methods may be called from different executor threads.

    Args:
        slop: largest allowed difference of matching stamps, seconds (>= 0, inclusive).
        queue_size: most frames held per stream while waiting (>= 1).
        offset: seconds added to thermal stamps before matching, to cancel a constant clock
            offset (thermal clock behind the visible one by 50 ms: ``offset=0.05``).
        allow_headerless: accept ``stamp_ns=None`` and stamp such frames with ``clock_ns()``
            (arrival time; as in message_filters, avoid it when real stamps exist).
        jump_back_reset: a frame this many seconds older than the newest seen on its stream
            resets the state (> slop; ``math.inf`` disables).
        min_visible_interval: lower bound on the gap between consecutive visible stamps,
            seconds; lets a pair out without waiting for the next visible frame when that
            frame cannot be closer (0: always wait; never set it above the true gap).
        min_thermal_interval: the same for the thermal stream.
        clock_ns: clock for headerless frames, returning ns.
        on_clock_jump: called after each reset by a clock jump, outside the lock, with the
            stream, its newest stamp and the stamp that went back (ns, as given); its
            exceptions propagate to the caller of ``add_*``.

    Raises:
        ConfigError: a parameter is out of range.
    """

    def __init__(self, slop: float, queue_size: int, offset: float = 0.0,
                 allow_headerless: bool = False, *, jump_back_reset: float = 1.0,
                 min_visible_interval: float = 0.0, min_thermal_interval: float = 0.0,
                 clock_ns: Callable[[], int] = time.time_ns,
                 on_clock_jump: ClockJumpCallback | None = None) -> None:
        if not (math.isfinite(slop) and slop >= 0):
            raise ConfigError(f"slop must be a finite number of seconds >= 0, got {slop!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        if not math.isfinite(offset):
            raise ConfigError(f"offset must be a finite number of seconds, got {offset!r}")
        jump_back_ns = jump_back_threshold_ns(jump_back_reset, slop)
        for name, interval in (("min_visible_interval", min_visible_interval),
                               ("min_thermal_interval", min_thermal_interval)):
            if not (math.isfinite(interval) and interval >= 0):
                raise ConfigError(f"{name} must be a finite number of seconds >= 0, got "
                                  f"{interval!r}")
        self._slop_ns = seconds_to_ns(slop)
        self._queue_size = queue_size
        self._allow_headerless = allow_headerless
        self._jump_back_ns = jump_back_ns
        self._clock_ns = clock_ns
        self._on_clock_jump = on_clock_jump
        self._visible = _Stream(True, 0, seconds_to_ns(min_visible_interval))
        self._thermal = _Stream(False, seconds_to_ns(offset), seconds_to_ns(min_thermal_interval))
        self._counters = SyncCounters()
        self._lock = threading.Lock()

    @property
    def counters(self) -> SyncCounters:
        """Snapshot of the running totals."""
        with self._lock:
            return replace(self._counters)

    @property
    def queue_size(self) -> int:
        """Most frames held per stream."""
        return self._queue_size

    @property
    def pending(self) -> tuple[int, int]:
        """Frames queued now, ``(visible, thermal)``."""
        with self._lock:
            return len(self._visible.queue), len(self._thermal.queue)

    def queued_frames(self) -> list[tuple[str, int, Any]]:
        """Frames waiting for a partner, in matching order.

        Returns:
            ``(stream, stamp_ns as given, item)`` per frame; a synchroniser that replaces this
            one re-adds them, so none is lost.
        """
        with self._lock:
            frames = [(frame.match_ns, stream, frame.stamp_ns, frame.item)
                      for stream, queue in (("visible", self._visible.queue),
                                            ("thermal", self._thermal.queue))
                      for frame in queue]
        return [(stream, stamp_ns, item) for _, stream, stamp_ns, item in
                sorted(frames, key=operator.itemgetter(0))]

    def add_visible(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        """Add a visible frame.

        Args:
            stamp_ns: its stamp in integer nanoseconds (``None`` only with
                ``allow_headerless``).
            item: anything (typically the Image message); returned untouched in pairs.

        Returns:
            The pairs this call completed, oldest first (often empty).

        Raises:
            InputError: ``stamp_ns`` is ``None`` without ``allow_headerless``.
            TypeError: ``stamp_ns`` is not an integer.
        """
        return self._add(self._visible, stamp_ns, item)

    def add_thermal(self, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        """Add a thermal frame; same contract as :meth:`add_visible`."""
        return self._add(self._thermal, stamp_ns, item)

    def reset(self) -> None:
        """Clear queues and output history (queued frames count as dropped)."""
        with self._lock:
            self._clear_state()

    def _add(self, stream: _Stream, stamp_ns: int | None, item: Any) -> list[MatchedPair]:
        if stamp_ns is None:
            if not self._allow_headerless:
                raise InputError("frame has no stamp and allow_headerless is False")
            stamp_ns = self._clock_ns()
        stamp_ns = operator.index(stamp_ns)
        match_ns = stamp_ns + stream.offset_ns
        jumped_from_ns = None
        pairs: list[MatchedPair] = []
        with self._lock:
            if stream.newest_ns is not None and match_ns < stream.newest_ns - self._jump_back_ns:
                jumped_from_ns = stream.newest_ns - stream.offset_ns
                self._clear_state()
                self._counters.resets += 1
            stream.newest_ns = match_ns if stream.newest_ns is None else max(stream.newest_ns,
                                                                             match_ns)
            if self._is_late(stream, match_ns) or not stream.insert(
                    _Frame(match_ns, stamp_ns, item)):
                self._counters.late_or_out_of_order += 1
            else:
                self._match(pairs, force=False)
                if len(stream.queue) > self._queue_size:
                    self._match(pairs, force=True)
                    if len(stream.queue) > self._queue_size:
                        self._drop_head(stream)
        if jumped_from_ns is not None and self._on_clock_jump is not None:
            self._on_clock_jump("visible" if stream.is_visible else "thermal", jumped_from_ns,
                                stamp_ns)
        return pairs

    @staticmethod
    def _is_late(stream: _Stream, match_ns: int) -> bool:
        # Emitted pairs are at most slop apart, so the other stream's last output adds no test.
        return stream.last_emitted_ns is not None and match_ns <= stream.last_emitted_ns

    def _match(self, pairs: list[MatchedPair], force: bool) -> None:
        """Apply the matching rule until it has to wait; ``force`` emits one waiting pair."""
        visible, thermal = self._visible, self._thermal
        while visible.queue and thermal.queue:
            v_ns, t_ns = visible.queue[0].match_ns, thermal.queue[0].match_ns
            if v_ns < t_ns - self._slop_ns:
                self._drop_head(visible)
                continue
            if t_ns < v_ns - self._slop_ns:
                self._drop_head(thermal)
                continue
            earlier, later = (visible, thermal) if v_ns <= t_ns else (thermal, visible)
            early_ns, late_ns = earlier.queue[0].match_ns, later.queue[0].match_ns
            gap = late_ns - early_ns
            if len(earlier.queue) > 1:
                if abs(earlier.queue[1].match_ns - late_ns) < gap:
                    self._drop_head(earlier)
                    continue
            elif early_ns + earlier.min_interval_ns - late_ns < gap:
                # The next frame of the earlier stream could still be closer: wait for it.
                if not force:
                    return
                force = False
            pairs.append(self._emit_heads())

    def _emit_heads(self) -> MatchedPair:
        visible_frame = self._visible.queue.popleft()
        thermal_frame = self._thermal.queue.popleft()
        self._visible.last_emitted_ns = visible_frame.match_ns
        self._thermal.last_emitted_ns = thermal_frame.match_ns
        self._counters.matched += 1
        return MatchedPair(visible_frame.item, thermal_frame.item, visible_frame.stamp_ns,
                           thermal_frame.stamp_ns)

    def _drop_head(self, stream: _Stream) -> None:
        stream.queue.popleft()
        if stream.is_visible:
            self._counters.dropped_visible += 1
        else:
            self._counters.dropped_thermal += 1

    def _clear_state(self) -> None:
        self._counters.dropped_visible += self._visible.clear()
        self._counters.dropped_thermal += self._thermal.clear()


def make_synchroniser(slop: float, queue_size: int, offset: float = 0.0,
                      allow_headerless: bool = False, *, prefer_message_filters: bool = False,
                      **pairer_options: Any) -> PairSynchroniser:
    """Build the pair synchroniser the node uses.

    Args:
        slop: see :class:`ApproximateTimePairer`.
        queue_size: see :class:`ApproximateTimePairer`.
        offset: see :class:`ApproximateTimePairer`.
        allow_headerless: see :class:`ApproximateTimePairer`.
        prefer_message_filters: use ``message_filters.ApproximateTimeSynchronizer`` (behind
            the same ``add_*`` interface) when it can be imported; otherwise, or when it
            cannot, use :class:`ApproximateTimePairer`.
        **pairer_options: keyword-only options of :class:`ApproximateTimePairer`; the
            adapter honours ``jump_back_reset`` and ``on_clock_jump`` (message_filters has no
            equivalent of the others and no clock-jump rule of its own) and ignores the rest.

    Returns:
        An object with ``add_visible``, ``add_thermal`` and ``counters``. The adapter counts
        only ``matched`` and ``resets`` (message_filters reports no drops), emits at most one
        pair per call, possibly not the nearest one (its Python policy pairs as soon as one
        fits), and on a clock jump back replaces the message_filters synchroniser by a new one.
    """
    if prefer_message_filters:
        try:
            import message_filters
        except ImportError:
            pass
        else:
            from lutfuse_ros.stream.message_filters_pairing import MessageFiltersAdapter

            return MessageFiltersAdapter(
                message_filters, slop, queue_size, offset, allow_headerless,
                jump_back_reset=pairer_options.get("jump_back_reset", 1.0),
                on_clock_jump=pairer_options.get("on_clock_jump"))
    return ApproximateTimePairer(slop, queue_size, offset, allow_headerless, **pairer_options)


def jump_back_threshold_ns(jump_back_reset: float, slop: float) -> float:
    """``jump_back_reset`` in ns (``inf`` stays ``inf``), after checking it exceeds ``slop``.

    Raises:
        ConfigError: ``jump_back_reset <= slop``.
    """
    if not jump_back_reset > slop:
        raise ConfigError(f"jump_back_reset must exceed slop ({slop} s), got "
                          f"{jump_back_reset!r}")
    return math.inf if math.isinf(jump_back_reset) else seconds_to_ns(jump_back_reset)


def seconds_to_ns(seconds: float) -> int:
    """Seconds as integer nanoseconds (rounded)."""
    return int(round(seconds * _NS_PER_S))
