"""Tests of lutfuse_ros.stream.pairing: approximate-time pairing with synthetic stamps."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from message_filters_stand_in import stand_in_message_filters

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.stream.pairing import ApproximateTimePairer, MatchedPair, make_synchroniser

MS = 1_000_000  # ns per millisecond


def stream_stamps(rate_hz: float, duration_s: float, start_ms: float = 0.0,
                  jitter_ms: float = 0.0, seed: int = 0) -> list[int]:
    """Stamps (ns) of a stream at ``rate_hz`` with uniform jitter, strictly increasing."""
    count = int(duration_s * rate_hz)
    period_ms = 1000.0 / rate_hz
    jitter = np.random.default_rng(seed).uniform(-jitter_ms, jitter_ms, count)
    return [int(round((start_ms + i * period_ms + jitter[i]) * MS)) for i in range(count)]


def feed(pairer: ApproximateTimePairer, visible: list[int], thermal: list[int],
         visible_latency_ms: float = 0.0, thermal_latency_ms: float = 0.0) -> list[MatchedPair]:
    """Deliver both streams in arrival order (stamp + latency); items are ``("v"|"t", i)``.

    Also checks after every call that no queue holds more than ``queue_size`` frames.
    """
    events = [(s + visible_latency_ms * MS, 0, i, s) for i, s in enumerate(visible)]
    events += [(s + thermal_latency_ms * MS, 1, i, s) for i, s in enumerate(thermal)]
    pairs = []
    for _, stream, index, stamp in sorted(events):
        if stream == 0:
            pairs += pairer.add_visible(stamp, ("v", index))
        else:
            pairs += pairer.add_thermal(stamp, ("t", index))
        assert max(pairer.pending) <= pairer.queue_size
    return pairs


def max_gap_ms(pairs: list[MatchedPair], offset_ms: float = 0.0) -> float:
    return max(abs(p.visible_stamp_ns - (p.thermal_stamp_ns + offset_ms * MS)) / MS
               for p in pairs)


def assert_well_formed(pairs: list[MatchedPair], slop_ms: float, offset_ms: float = 0.0):
    """Pairs within slop, each frame used once, stamps strictly increasing per stream."""
    assert all(abs(p.visible_stamp_ns - p.thermal_stamp_ns - offset_ms * MS) <= slop_ms * MS
               for p in pairs)
    assert len({p.visible for p in pairs}) == len(pairs)
    assert len({p.thermal for p in pairs}) == len(pairs)
    for field in ("visible_stamp_ns", "thermal_stamp_ns"):
        stamps = [getattr(p, field) for p in pairs]
        assert all(b > a for a, b in zip(stamps, stamps[1:])), field


def nearest(stamp: int, candidates: list[int]) -> int:
    return min(abs(c - stamp) for c in candidates)


class TestBasicPairing:
    def test_jitter_within_slop_pairs_everything(self):
        visible = stream_stamps(30, 3, jitter_ms=3, seed=1)
        thermal = stream_stamps(30, 3, jitter_ms=3, seed=2)
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5)
        pairs = feed(pairer, visible, thermal)
        assert_well_formed(pairs, slop_ms=10)
        assert len(pairs) >= len(visible) - 1  # the last one may wait for a successor
        assert all(p.visible[1] == p.thermal[1] for p in pairs)
        assert max_gap_ms(pairs) <= 6.0
        counters = pairer.counters
        assert counters.matched == len(pairs)
        assert counters.late_or_out_of_order == counters.resets == 0

    def test_pair_waits_for_proof_then_picks_nearest(self):
        pairer = ApproximateTimePairer(slop=0.020, queue_size=5)
        assert pairer.add_visible(100 * MS, "v100") == []
        assert pairer.add_thermal(95 * MS, "t95") == []  # t105 could still come
        assert pairer.add_thermal(102 * MS, "t102") == []  # t95 dropped; t102 may be beaten
        pairs = pairer.add_visible(133 * MS, "v133")
        assert pairs == [MatchedPair("v100", "t102", 100 * MS, 102 * MS)]
        assert pairer.counters.dropped_thermal == 1
        assert pairer.pending == (1, 0)

    def test_equal_stamps_pair_at_once(self):
        pairer = ApproximateTimePairer(slop=0.0, queue_size=2)
        pairer.add_visible(5 * MS, "v")
        assert pairer.add_thermal(5 * MS, "t") == [MatchedPair("v", "t", 5 * MS, 5 * MS)]

    def test_pairs_never_exceed_slop(self):
        visible = stream_stamps(30, 2, jitter_ms=12, seed=3)
        thermal = stream_stamps(30, 2, start_ms=9, jitter_ms=12, seed=4)
        pairs = feed(ApproximateTimePairer(slop=0.008, queue_size=4), visible, thermal)
        assert pairs and max_gap_ms(pairs) <= 8.0
        assert_well_formed(pairs, slop_ms=8)

    def test_known_minimum_interval_avoids_waiting(self):
        pairer = ApproximateTimePairer(slop=0.02, queue_size=5, min_thermal_interval=0.1)
        pairer.add_thermal(95 * MS, "t95")  # the next thermal frame is >= 195 ms
        assert pairer.add_visible(100 * MS, "v100") == [
            MatchedPair("v100", "t95", 100 * MS, 95 * MS)]

    def test_deterministic(self):
        visible = stream_stamps(30, 2, jitter_ms=10, seed=5)
        thermal = stream_stamps(25, 2, jitter_ms=10, seed=6)
        first = feed(ApproximateTimePairer(0.015, 5), visible, thermal, thermal_latency_ms=20)
        second = feed(ApproximateTimePairer(0.015, 5), visible, thermal, thermal_latency_ms=20)
        assert first == second and first


class TestLateAndDroppedFrames:
    def test_frames_older_than_last_pair_are_dropped(self):
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5)
        pairer.add_visible(100 * MS, "v100")
        pairer.add_thermal(100 * MS, "t100")
        assert pairer.counters.matched == 1
        assert pairer.add_visible(95 * MS, "v95") == []
        assert pairer.add_visible(100 * MS, "again") == []
        assert pairer.add_thermal(80 * MS, "t80") == []
        assert pairer.counters.late_or_out_of_order == 3
        assert pairer.pending == (0, 0)
        # A visible frame may still precede the last thermal stamp within slop.
        pairer.add_visible(104 * MS, "v104")
        assert pairer.add_thermal(104 * MS, "t104")[0].visible == "v104"

    def test_duplicate_stamp_is_rejected(self):
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5)
        pairer.add_visible(100 * MS, "first")
        pairer.add_visible(100 * MS, "second")
        assert pairer.counters.late_or_out_of_order == 1
        assert pairer.add_thermal(100 * MS, "t")[0].visible == "first"

    def test_dropped_frames_on_either_stream(self):
        visible = stream_stamps(30, 4, jitter_ms=2, seed=7)
        thermal = stream_stamps(30, 4, start_ms=1, jitter_ms=2, seed=8)
        kept_visible = [s for i, s in enumerate(visible) if i % 5 != 2]
        kept_thermal = [s for i, s in enumerate(thermal) if i % 7 != 3]
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5)
        pairs = feed(pairer, kept_visible, kept_thermal)
        assert_well_formed(pairs, slop_ms=10)
        # Only frames whose partner survived pair, and always with that partner.
        assert all(visible.index(p.visible_stamp_ns) == thermal.index(p.thermal_stamp_ns)
                   for p in pairs)
        both = len({i for i in range(len(visible)) if i % 5 != 2 and i % 7 != 3})
        assert both - 1 <= len(pairs) <= both
        counters = pairer.counters
        assert counters.dropped_visible >= len(kept_visible) - both - 1
        assert counters.dropped_thermal >= len(kept_thermal) - both - 1


class TestDifferentRates:
    @pytest.mark.parametrize("thermal_hz", [9, 30, 60])
    def test_each_thermal_frame_pairs_at_most_once(self, thermal_hz):
        visible = stream_stamps(30, 3, jitter_ms=1, seed=9)
        thermal = stream_stamps(thermal_hz, 3, start_ms=4, jitter_ms=1, seed=10)
        pairer = ApproximateTimePairer(slop=0.017, queue_size=8)
        pairs = feed(pairer, visible, thermal, thermal_latency_ms=15)
        assert_well_formed(pairs, slop_ms=17)
        expected = min(len(visible), len(thermal))
        assert expected - 2 <= len(pairs) <= expected
        counters = pairer.counters
        assert counters.matched + counters.dropped_thermal + pairer.pending[1] == len(thermal)

    def test_60hz_thermal_gives_every_visible_frame_its_nearest(self):
        visible = stream_stamps(30, 3, jitter_ms=2, seed=11)
        thermal = stream_stamps(60, 3.2, start_ms=-20, jitter_ms=2, seed=12)
        pairs = feed(ApproximateTimePairer(slop=0.017, queue_size=8), visible, thermal,
                     thermal_latency_ms=10)
        assert len(pairs) >= len(visible) - 1
        for pair in pairs:
            assert abs(pair.visible_stamp_ns - pair.thermal_stamp_ns) == nearest(
                pair.visible_stamp_ns, thermal)
        assert max_gap_ms(pairs) <= 1000 / 120 + 2

    def test_9hz_thermal_gets_its_nearest_visible_frame(self):
        visible = stream_stamps(30, 3, jitter_ms=1, seed=13)
        thermal = stream_stamps(9, 3, start_ms=10, jitter_ms=1, seed=14)
        pairs = feed(ApproximateTimePairer(slop=0.020, queue_size=8), visible, thermal)
        assert len(pairs) >= len(thermal) - 1
        for pair in pairs:
            assert abs(pair.visible_stamp_ns - pair.thermal_stamp_ns) == nearest(
                pair.thermal_stamp_ns, visible)


class TestStallOutOfOrderOffset:
    def test_stalled_stream_is_bounded_and_resumes(self):
        visible = stream_stamps(30, 4, jitter_ms=1, seed=15)
        thermal = [s for s in stream_stamps(30, 4, jitter_ms=1, seed=16)
                   if not 1_000 * MS <= s <= 3_000 * MS]
        pairer = ApproximateTimePairer(slop=0.010, queue_size=4)
        pairs = feed(pairer, visible, thermal)  # asserts pending <= queue_size each call
        assert_well_formed(pairs, slop_ms=10)
        assert sum(p.visible_stamp_ns < 1_000 * MS for p in pairs) >= 28
        assert sum(p.visible_stamp_ns > 3_000 * MS for p in pairs) >= 28
        assert pairer.counters.dropped_visible >= 55

    def test_stalled_stream_forces_out_a_waiting_pair(self):
        pairer = ApproximateTimePairer(slop=0.010, queue_size=2)
        pairer.add_thermal(98 * MS, "t98")
        pairer.add_visible(100 * MS, "v100")  # waits: a thermal frame at ~101 could beat t98
        assert pairer.add_visible(133 * MS, "v133") == []
        pairs = pairer.add_visible(166 * MS, "v166")  # queue of 3 > 2: decide now
        assert pairs == [MatchedPair("v100", "t98", 100 * MS, 98 * MS)]
        for stamp in range(200, 2000, 33):
            pairer.add_visible(stamp * MS, stamp)
            assert pairer.pending[0] <= 2

    @staticmethod
    def swapped_order(count: int, every: int = 3) -> list[int]:
        order = list(range(count))
        for i in range(0, count - 1, every):
            order[i], order[i + 1] = order[i + 1], order[i]
        return order

    def test_out_of_order_frames_are_sorted_while_partner_is_pending(self):
        visible = stream_stamps(30, 2, jitter_ms=1, seed=17)
        thermal = stream_stamps(30, 2, start_ms=2, jitter_ms=1, seed=18)
        # Visible frames arrive pairwise swapped; thermal frames 50 ms after their stamps.
        events = [(visible[max(i, j)], 0, j) for i, j in
                  enumerate(self.swapped_order(len(visible)))]
        events += [(stamp + 50 * MS, 1, i) for i, stamp in enumerate(thermal)]
        pairer = ApproximateTimePairer(slop=0.010, queue_size=6)
        pairs = []
        for _, stream, i in sorted(events):
            if stream == 0:
                pairs += pairer.add_visible(visible[i], ("v", i))
            else:
                pairs += pairer.add_thermal(thermal[i], ("t", i))
        assert_well_formed(pairs, slop_ms=10)
        assert all(p.visible[1] == p.thermal[1] for p in pairs)
        assert len(pairs) >= len(visible) - 1
        assert pairer.counters.late_or_out_of_order == 0

    def test_reordered_frame_that_missed_its_partner_is_dropped_not_stalling(self):
        visible = stream_stamps(30, 2, jitter_ms=1, seed=17)
        thermal = stream_stamps(30, 2, start_ms=2, jitter_ms=1, seed=18)
        order = self.swapped_order(len(visible))
        pairer = ApproximateTimePairer(slop=0.010, queue_size=6)
        pairs = []
        for i in order:  # lockstep: a swapped frame arrives after its partner's successor
            pairs += pairer.add_visible(visible[i], ("v", i))
            pairs += pairer.add_thermal(thermal[i], ("t", i))
        assert_well_formed(pairs, slop_ms=10)
        assert all(p.visible[1] == p.thermal[1] for p in pairs)
        swaps = len(range(0, len(order) - 1, 3))
        assert len(pairs) >= len(visible) - swaps - 1
        assert pairs[-1].visible[1] >= len(visible) - 2  # still pairing at the end
        counters = pairer.counters
        assert counters.dropped_visible + counters.dropped_thermal >= 2 * swaps - 2

    @pytest.mark.parametrize("offset_ms", [50.0, -20.0])
    def test_constant_clock_offset_is_compensated(self, offset_ms):
        # Thermal clock behind by offset_ms (negative: ahead); 30 Hz, +-2 ms jitter, 8 ms slop.
        visible = stream_stamps(30, 2, jitter_ms=2, seed=19)
        thermal = [s - int(offset_ms * MS) for s in stream_stamps(30, 2, jitter_ms=2, seed=20)]
        uncompensated = feed(ApproximateTimePairer(0.008, 5), visible, thermal)
        assert uncompensated == []
        pairer = ApproximateTimePairer(0.008, 5, offset=offset_ms / 1000)
        pairs = feed(pairer, visible, thermal)
        assert len(pairs) >= len(visible) - 1
        assert_well_formed(pairs, slop_ms=8, offset_ms=offset_ms)
        assert all(p.visible[1] == p.thermal[1] for p in pairs)
        assert pairs[0].thermal_stamp_ns == thermal[pairs[0].thermal[1]]  # raw stamp returned


class TestClockJumpBack:
    def test_bag_loop_resets_and_keeps_pairing(self):
        visible = stream_stamps(30, 2, jitter_ms=1, seed=21)
        thermal = stream_stamps(30, 2, start_ms=1, jitter_ms=1, seed=22)
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5, jump_back_reset=1.0)
        first = feed(pairer, visible, thermal)
        second = feed(pairer, visible, thermal)  # the bag plays again from its start
        assert len(first) >= len(visible) - 1 and len(second) >= len(visible) - 1
        assert_well_formed(second, slop_ms=10)
        assert pairer.counters.resets >= 1

    def test_without_reset_rule_a_loop_stalls(self):
        visible = stream_stamps(30, 2, seed=23)
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5, jump_back_reset=math.inf)
        feed(pairer, visible, visible)
        assert feed(pairer, visible, visible) == []
        assert pairer.counters.resets == 0

    def test_small_reordering_does_not_reset(self):
        pairer = ApproximateTimePairer(slop=0.010, queue_size=5, jump_back_reset=0.5)
        pairer.add_visible(1_000 * MS, "a")
        pairer.add_visible(600 * MS, "b")  # 0.4 s back: out of order, no reset
        assert pairer.counters.resets == 0 and pairer.pending == (2, 0)
        pairer.add_visible(400 * MS, "c")  # 0.6 s behind the newest: reset
        assert pairer.counters.resets == 1 and pairer.pending == (1, 0)
        assert pairer.counters.dropped_visible == 2


class TestConfiguration:
    @pytest.mark.parametrize("kwargs, pattern", [
        ({"slop": -0.1, "queue_size": 5}, "slop"),
        ({"slop": math.nan, "queue_size": 5}, "slop"),
        ({"slop": 0.01, "queue_size": 0}, "queue_size"),
        ({"slop": 0.01, "queue_size": 2.5}, "queue_size"),
        ({"slop": 0.01, "queue_size": 5, "offset": math.inf}, "offset"),
        ({"slop": 0.5, "queue_size": 5, "jump_back_reset": 0.5}, "jump_back_reset"),
        ({"slop": 0.01, "queue_size": 5, "min_thermal_interval": -1}, "min_thermal_interval"),
    ])
    def test_invalid_parameters(self, kwargs, pattern):
        with pytest.raises(ConfigError, match=pattern):
            ApproximateTimePairer(**kwargs)

    def test_headerless_frames(self):
        with pytest.raises(InputError, match="allow_headerless"):
            ApproximateTimePairer(0.01, 5).add_visible(None, "v")
        ticks = iter([100 * MS, 101 * MS])
        pairer = ApproximateTimePairer(0.01, 5, allow_headerless=True,
                                       clock_ns=lambda: next(ticks))
        pairer.add_visible(None, "v")
        assert pairer.add_thermal(None, "t") == []  # waits like any other pair
        assert pairer.add_visible(133 * MS, "v2")[0][:2] == ("v", "t")

    def test_float_stamp_is_rejected(self):
        with pytest.raises(TypeError):
            ApproximateTimePairer(0.01, 5).add_visible(1.5, "v")

    def test_sync_module_imports_without_ros(self):
        blocker = ("import sys; sys.modules['rclpy'] = sys.modules['sensor_msgs'] = None; "
                   "import lutfuse_ros.stream.pairing as s; "
                   "s.make_synchroniser(0.01, 2).add_visible(0, 1)")
        root = pathlib.Path(__file__).resolve().parents[2]
        subprocess.run([sys.executable, "-c", blocker], cwd=root, check=True, timeout=60)


@settings(max_examples=120, deadline=None)
@given(visible=st.lists(st.integers(0, 400), max_size=25),
       thermal=st.lists(st.integers(0, 400), max_size=25),
       slop_ms=st.integers(0, 40), queue_size=st.integers(1, 6), offset_ms=st.integers(-30, 30),
       thermal_latency_ms=st.integers(-20, 60))
def test_random_streams_keep_invariants(visible, thermal, slop_ms, queue_size, offset_ms,
                                        thermal_latency_ms):
    """Whatever arrives: within slop, one use per frame, monotonic, bounded, all accounted."""
    pairer = ApproximateTimePairer(slop_ms / 1000, queue_size, offset=offset_ms / 1000)
    pairs = []
    events = sorted([(s, 0, i) for i, s in enumerate(visible)]
                    + [(s + thermal_latency_ms, 1, i) for i, s in enumerate(thermal)])
    for _, stream, index in events:
        if stream == 0:
            pairs += pairer.add_visible(visible[index] * MS, ("v", index))
        else:
            pairs += pairer.add_thermal(thermal[index] * MS, ("t", index))
        assert max(pairer.pending) <= queue_size
    assert_well_formed(pairs, slop_ms, offset_ms)
    counters = pairer.counters
    accounted = (2 * counters.matched + counters.dropped_visible + counters.dropped_thermal
                 + counters.late_or_out_of_order + sum(pairer.pending))
    assert accounted == len(visible) + len(thermal)
    assert counters.resets == 0  # 0.4 s of stamps never jumps back by 1 s


class TestMakeSynchroniser:
    def test_own_pairer_without_message_filters(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "message_filters", None)
        synchroniser = make_synchroniser(0.01, 5, prefer_message_filters=True,
                                         jump_back_reset=2.0)
        assert isinstance(synchroniser, ApproximateTimePairer)
        assert isinstance(make_synchroniser(0.01, 5), ApproximateTimePairer)

    def test_adapter_wiring_with_a_stand_in_module(self, monkeypatch):
        """Exact-stamp stand-in for message_filters: checks wrapping, offset and collection."""
        fake = stand_in_message_filters()
        monkeypatch.setitem(sys.modules, "message_filters", fake)
        adapter = make_synchroniser(0.01, 5, offset=0.05, prefer_message_filters=True)
        assert not isinstance(adapter, ApproximateTimePairer)
        assert adapter.add_visible(150 * MS, "v") == []
        assert adapter.add_thermal(100 * MS, "t") == [MatchedPair("v", "t", 150 * MS, 100 * MS)]
        assert adapter.counters.matched == 1

    def test_real_message_filters_adapter(self):
        pytest.importorskip("message_filters", reason="message_filters comes with a ROS 2 "
                            "install and is not installable from PyPI")
        adapter = make_synchroniser(0.01, 5, prefer_message_filters=True)
        assert not isinstance(adapter, ApproximateTimePairer)
        adapter.add_visible(100 * MS, "v")
        assert [p[:2] for p in adapter.add_thermal(102 * MS, "t")] == [("v", "t")]
