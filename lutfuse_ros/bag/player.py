"""Playback planning and pacing for ``lutfuse replay`` (no ROS here).

* :func:`plan_playback` runs the package's
  :class:`~lutfuse_ros.stream.pairing.ApproximateTimePairer` over the bag's stamps, with the
  node's synchronisation parameters, to predict which visible/thermal messages the node will
  fuse: the expected output count of the report, and the unit of flow control.
* :class:`Pacer` reproduces the recorded timing (bag time, optionally scaled).
* :class:`FlowControl` bounds the pairs in flight when playing as fast as possible. A pair is
  *released* by the message after which the synchroniser emits it (an approximate-time
  policy often waits for the next frame to be sure no closer partner comes) and *resolved*
  when a fused image with a stamp at or after its visible stamp has come back (the node's
  output stamps only increase, so a later output also settles pairs it skipped). Before each
  message, fewer than ``window`` released pairs may be unresolved; waiting never deadlocks
  because every released pair has all its messages published already. A pair that never
  comes back is given up after ``stall_timeout`` seconds without any output. With
  ``window=1`` the node holds one pair at a time, so its latest-wins queue never drops one
  and every latency is measured from an idle node; larger windows overlap transport with
  inference but race the node's worker (a pair released just before the worker takes the
  previous one replaces it).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from lutfuse_ros.bag.common import NS_PER_S, THERMAL, VISIBLE
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.settings.node_settings import SyncSettings


@dataclass
class PlaybackPlan:
    """What the bag holds, in playback order, and the pairs the node should fuse.

    Attributes:
        streams: ``"visible"`` or ``"thermal"`` per message, in playback order.
        stamps_ns: header stamp per message.
        pairs: predicted pairs ``(visible_stamp_ns, thermal_stamp_ns)`` in output order.
        releases: playback index -> highest number of the predicted pairs the synchroniser
            emits right after that message.
        held_at_end: predicted pairs that only a frame after the end of the bag would release
            (an approximate-time synchroniser waits for the next frame): the node cannot emit
            them.
    """

    streams: list[str] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    releases: dict[int, int] = field(default_factory=dict)
    held_at_end: int = 0

    @property
    def visible_count(self) -> int:
        """Visible messages."""
        return self.streams.count(VISIBLE)

    @property
    def thermal_count(self) -> int:
        """Thermal messages."""
        return self.streams.count(THERMAL)

    def thermal_partner(self) -> dict[int, int]:
        """Visible stamp -> predicted thermal partner stamp."""
        return dict(self.pairs)


def plan_playback(streams: list[str], stamps_ns: list[int], sync: SyncSettings) -> PlaybackPlan:
    """Predict the node's pairs for messages played in the given order.

    Args:
        streams: ``"visible"``/``"thermal"`` per message in playback order.
        stamps_ns: header stamps in the same order.
        sync: the node's synchronisation parameters.

    Returns:
        The plan; pairs still queued at the end are released by a sentinel frame far after
        the last stamp and counted in ``held_at_end``.
    """
    pairer = sync.make_pairer(allow_message_filters=False)
    matched: list[tuple[int, object]] = []
    for index, (stream, stamp) in enumerate(zip(streams, stamps_ns)):
        add = pairer.add_visible if stream == VISIBLE else pairer.add_thermal
        matched.extend((index, pair) for pair in add(stamp, index))
    releasable = len(matched)
    if stamps_ns:
        margin_s = abs(sync.thermal_offset) + 10 * sync.slop + 1.0
        sentinel = max(stamps_ns) + round(margin_s * NS_PER_S)
        for add, stamp in ((pairer.add_visible, sentinel),
                           (pairer.add_thermal, sentinel - round(sync.thermal_offset * NS_PER_S)),
                           (pairer.add_visible, sentinel + NS_PER_S),
                           (pairer.add_thermal, sentinel + NS_PER_S)):
            matched.extend((-1, pair) for pair in add(stamp, None))
    real = [(index, pair) for index, pair in matched
            if pair.visible is not None and pair.thermal is not None]
    plan = PlaybackPlan(streams=list(streams), stamps_ns=list(stamps_ns),
                        held_at_end=len(real) - releasable)
    for number, (index, pair) in enumerate(real):
        plan.pairs.append((pair.visible_stamp_ns, pair.thermal_stamp_ns))
        if index >= 0:
            plan.releases[index] = number
    return plan


class Pacer:
    """Sleep until each message's recorded time, scaled by ``rate``.

    Args:
        rate: playback speed factor (2.0 plays twice as fast as recorded).
        clock: monotonic clock in seconds.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ConfigError(f"--rate must be positive, got {rate}")
        self.rate = rate
        self._clock = clock
        self._origin: tuple[float, int] | None = None

    def wait(self, log_ns: int, stop: threading.Event) -> bool:
        """Block until the time of the message recorded at ``log_ns``.

        Returns:
            ``False`` when ``stop`` was set while waiting.
        """
        if self._origin is None:
            self._origin = (self._clock(), log_ns)
        start_s, start_ns = self._origin
        target = start_s + (log_ns - start_ns) / NS_PER_S / self.rate
        delay = target - self._clock()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


class FlowControl:
    """At most ``window`` predicted pairs in flight (see the module doc).

    Thread-safe: :meth:`output_received` is called from the ROS executor thread,
    :meth:`wait_for_slot` from the player.

    Args:
        pair_visible_stamps: visible stamps of the predicted pairs, ascending.
        window: pairs allowed in flight (>= 1).
        stall_timeout: seconds without any output after which the oldest pair in flight is
            given up.
        clock: monotonic clock in seconds.
    """

    def __init__(self, pair_visible_stamps: list[int], window: int, stall_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window < 1:
            raise ConfigError(f"--max-in-flight must be at least 1, got {window}")
        if not stall_timeout > 0:
            raise ConfigError(f"--stall-timeout must be positive, got {stall_timeout}")
        self._stamps = list(pair_visible_stamps)
        self.window = window
        self.stall_timeout = stall_timeout
        self._clock = clock
        self._condition = threading.Condition()
        self._resolved_by_output = 0
        self._given_up_to = 0
        self._last_progress = -float("inf")
        self.timeouts = 0

    @property
    def resolved(self) -> int:
        """Predicted pairs settled by an output or given up."""
        with self._condition:
            return max(self._resolved_by_output, self._given_up_to)

    def output_received(self, stamp_ns: int) -> None:
        """Record a fused output with header stamp ``stamp_ns``."""
        with self._condition:
            settled = bisect.bisect_right(self._stamps, stamp_ns)
            if settled > self._resolved_by_output:
                self._resolved_by_output = settled
            self._last_progress = self._clock()
            self._condition.notify_all()

    def wait_for_slot(self, released: int, stop: threading.Event) -> bool:
        """Block until fewer than ``window`` of the first ``released`` pairs are unresolved.

        Args:
            released: predicted pairs released by the messages published so far.
            stop: abandons the wait when set.

        Returns:
            ``False`` when ``stop`` was set while waiting.
        """
        with self._condition:
            since = self._clock()
            while self._in_flight(released) >= self.window:
                if stop.is_set():
                    return False
                waited = self._clock() - max(since, self._last_progress)
                if waited >= self.stall_timeout:
                    self._given_up_to = max(self._resolved_by_output, self._given_up_to) + 1
                    self.timeouts += 1
                    since = self._clock()
                    continue
                self._condition.wait(min(0.05, self.stall_timeout - waited))
            return not stop.is_set()

    def _in_flight(self, released: int) -> int:
        return released - max(self._resolved_by_output, self._given_up_to)
