"""Camera frames in, fused frames out: pairing, output gate, rate limit and the worker.

:class:`FusionStream` is the node's frame path without ROS. :meth:`FusionStream.add` runs on
the executor with each checked :class:`~lutfuse_ros.stream.camera_frame.CameraFrame`: it
pairs it by stamp (:mod:`lutfuse_ros.stream.pairing`), drops the pair when nobody wants the
output (``idle``) or the rate limit says so (``rate_limited``), and hands the rest to a
:class:`~lutfuse_ros.stream.latest_wins_worker.LatestItemWorker` (the newest pair wins). The
worker fuses each pair with the step in the :class:`~lutfuse_ros.stream.step_slot.StepSlot`
and calls ``deliver`` with the result while it still holds that step; a pair that fails
(an undecodable frame, a rejected pair, a backend error) goes to ``on_failure``. The pairing
and rate-limit settings change live (:meth:`FusionStream.retune`): frames waiting for a
partner are re-paired under the new settings.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any, Callable, NamedTuple

from lutfuse_ros.settings.node_settings import SyncSettings
from lutfuse_ros.stream.camera_frame import CameraFrame
from lutfuse_ros.stream.fusion_step import FusedFrame, FusionStep
from lutfuse_ros.stream.latest_wins_worker import LatestItemWorker, RateLimiter
from lutfuse_ros.stream.pairing import ClockJumpCallback, MatchedPair
from lutfuse_ros.stream.step_slot import StepSlot


class FusedPair(NamedTuple):
    """One pair fused by the worker, as ``deliver`` receives it.

    Attributes:
        visible: the pair's visible frame.
        thermal: the pair's thermal frame.
        fused: the step's result.
        step: the step that fused it (held until ``deliver`` returns).
        started_ns: ``time.monotonic_ns()`` when the worker took the pair.
    """

    visible: CameraFrame
    thermal: CameraFrame
    fused: FusedFrame
    step: FusionStep
    started_ns: int

    @property
    def completed_ns(self) -> int:
        """When the pair was complete: the later of its frames' arrival times."""
        return max(self.visible.arrived_ns, self.thermal.arrived_ns)


class FusionStream:
    """Pair camera frames by stamp and fuse the newest pair on one worker thread.

    Args:
        sync: pairing settings (slop, offset, queue size, clock-jump rule).
        max_rate: most pairs fused per second of stamp time (0: no limit).
        slot: the step to fuse with; the owner may swap it at any time.
        deliver: called on the worker with each :class:`FusedPair`.
        on_failure: called on the worker with ``(pair, error)`` when decoding, fusing or
            ``deliver`` raised; the stream goes on with the next pair.
        wants_output: whether anyone consumes the output; when False a pair is counted as
            ``idle`` and not fused.
        count: called with ``pairs``, ``idle`` or ``rate_limited`` for each pair.
        on_clock_jump: the pairer's clock-jump callback ``(stream, newest_ns, stamp_ns)``.
        now_ns: the clock of the ``now`` output stamp source, nanoseconds.
    """

    def __init__(self, sync: SyncSettings, max_rate: float, slot: StepSlot, *,
                 deliver: Callable[[FusedPair], None],
                 on_failure: Callable[[MatchedPair, Exception], None],
                 wants_output: Callable[[], bool], count: Callable[[str], None],
                 on_clock_jump: ClockJumpCallback | None = None,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self._slot = slot
        self._deliver = deliver
        self._wants_output = wants_output
        self._count = count
        self._on_clock_jump = on_clock_jump
        self._now_ns = now_ns
        self._lock = threading.Lock()  # pairer and limiter vs. live changes
        self._sync = sync
        self._pairer = sync.make_pairer(on_clock_jump)
        self._retired: dict[str, int] = {}  # counters of pairers replaced live
        self._limiter = RateLimiter(max_rate)
        self._max_rate = max_rate
        self._worker = LatestItemWorker(self._fuse, on_failure, name="lutfuse-fusion")

    def start(self) -> None:
        """Start the worker thread."""
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Let the pair in progress finish and stop the worker; False if it did not stop."""
        return self._worker.stop(timeout)

    def add(self, frame: CameraFrame) -> None:
        """Pair one frame (executor side: no pixel work) and hand on the pairs it completes."""
        with self._lock:
            self._dispatch(self._add_to(self._pairer, frame.stream, frame.stamp_ns, frame))

    def retune(self, sync: SyncSettings, max_rate: float) -> None:
        """Apply new pairing and rate-limit settings without stopping.

        Frames waiting in the pairer are re-paired under the new settings; the pair in
        progress and the pending one are fused as they are.
        """
        with self._lock:
            if sync != self._sync:
                retired = asdict(self._pairer.counters)
                previous, self._pairer = self._pairer, sync.make_pairer(self._on_clock_jump)
                self._sync = sync
                for name, count in retired.items():
                    self._retired[name] = self._retired.get(name, 0) + count
                queued = getattr(previous, "queued_frames", lambda: [])()
                for stream, stamp_ns, frame in queued:
                    self._dispatch(self._add_to(self._pairer, stream, stamp_ns, frame))
            if max_rate != self._max_rate:
                self._limiter, self._max_rate = RateLimiter(max_rate), max_rate

    def sync_counters(self) -> dict[str, int]:
        """The pairer's running totals, those of pairers replaced live included."""
        return {name: count + self._retired.get(name, 0)
                for name, count in asdict(self._pairer.counters).items()}

    @property
    def dropped(self) -> int:
        """Pairs the worker never fused because a newer pair replaced them."""
        return self._worker.counters.dropped

    @staticmethod
    def _add_to(pairer: Any, stream: str, stamp_ns: int, frame: Any) -> list[MatchedPair]:
        add = pairer.add_visible if stream == "visible" else pairer.add_thermal
        return add(stamp_ns, frame)

    def _dispatch(self, pairs: list[MatchedPair]) -> None:
        for pair in pairs:
            self._count("pairs")
            if not self._wants_output():
                self._count("idle")
            elif self._limiter.allow(pair.visible_stamp_ns):
                self._worker.submit(pair)
            else:
                self._count("rate_limited")

    def _fuse(self, pair: MatchedPair) -> None:
        """Worker side: fuse one pair with the current step and deliver it."""
        started_ns = time.monotonic_ns()
        with self._slot.use() as step:
            fused = step.fuse(pair.visible, pair.thermal, self._now_ns)
            self._deliver(FusedPair(pair.visible, pair.thermal, fused, step, started_ns))
