"""Clock jumps back in the pair synchroniser.

The state resets instead of every later frame being dropped as late, the jump is reported to
a callback, and pairing restarts on the new timeline (both the own pairer and the
message_filters adapter).
"""

from __future__ import annotations

import math
import sys

import pytest
from message_filters_stand_in import stand_in_message_filters

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.stream.pairing import ApproximateTimePairer, make_synchroniser

MS = 1_000_000
S = 1_000_000_000


def play(synchroniser, start_ns: int, count: int, period_ms: int = 100,
         thermal_lag_ms: int = 2) -> list:
    """Alternate visible and thermal frames (thermal ``thermal_lag_ms`` later); all pairs."""
    pairs = []
    for index in range(count):
        stamp = start_ns + index * period_ms * MS
        pairs += synchroniser.add_visible(stamp, ("v", stamp))
        pairs += synchroniser.add_thermal(stamp + thermal_lag_ms * MS, ("t", stamp))
    return pairs


class TestPairerReset:
    def test_jump_back_resets_reports_and_pairs_on_the_new_timeline(self):
        jumps = []
        pairer = ApproximateTimePairer(0.01, 5, jump_back_reset=1.0,
                                       on_clock_jump=lambda *args: jumps.append(args))
        first = play(pairer, 100 * S, 20)
        second = play(pairer, 40 * S, 20)  # a bag looping: 60 s back
        assert len(first) == len(second) == 19  # the last pair of each run waits for proof
        assert all(40 * S <= p.visible_stamp_ns < 42 * S for p in second)
        assert jumps == [("visible", 100 * S + 19 * 100 * MS, 40 * S)]
        counters = pairer.counters
        assert counters.resets == 1
        # The pair waiting at the jump was discarded, not emitted across the timelines.
        assert counters.dropped_visible == 1 and counters.dropped_thermal == 1
        assert counters.late_or_out_of_order == 0

    def test_thermal_jumping_first_resets_once_and_keeps_pairing(self):
        jumps = []
        pairer = ApproximateTimePairer(0.01, 5, on_clock_jump=lambda *args: jumps.append(args))
        play(pairer, 100 * S, 5)
        assert pairer.add_thermal(10 * S, "t0") == []
        assert [stream for stream, *_ in jumps] == ["thermal"]
        pairs = play(pairer, 10 * S + 50 * MS, 5, thermal_lag_ms=-1)
        assert len(pairs) == 4 and pairer.counters.resets == 1

    def test_offset_is_not_mistaken_for_a_jump_and_callback_gets_raw_stamps(self):
        jumps = []
        pairer = ApproximateTimePairer(0.01, 5, offset=0.5, jump_back_reset=1.0,
                                       on_clock_jump=lambda *args: jumps.append(args))
        pairs = []
        for index in range(10):  # thermal clock 0.5 s behind the visible one
            stamp = 50 * S + index * 100 * MS
            pairs += pairer.add_visible(stamp, index)
            pairs += pairer.add_thermal(stamp - 500 * MS, index)
        assert len(pairs) >= 9 and pairer.counters.resets == 0
        pairer.add_thermal(30 * S, "back")
        assert jumps == [("thermal", 50 * S + 900 * MS - 500 * MS, 30 * S)]

    def test_jump_smaller_than_the_threshold_is_reordering_not_a_reset(self):
        jumps = []
        pairer = ApproximateTimePairer(0.01, 5, jump_back_reset=2.0,
                                       on_clock_jump=lambda *args: jumps.append(args))
        play(pairer, 100 * S, 10)
        newest = 100 * S + 900 * MS
        pairer.add_visible(newest - 1500 * MS, "reordered")  # behind the output: late
        assert jumps == [] and pairer.counters.late_or_out_of_order == 1
        pairer.add_visible(newest - 2500 * MS, "jumped")
        assert len(jumps) == 1 and pairer.counters.resets == 1

    def test_callback_runs_outside_the_lock(self):
        seen = []

        def on_clock_jump(*args):
            seen.append(pairer.pending)  # re-entering the pairer must not deadlock

        pairer = ApproximateTimePairer(0.01, 5, on_clock_jump=on_clock_jump)
        play(pairer, 100 * S, 3)
        pairer.add_visible(S, "back")
        assert seen == [(1, 0)]

    def test_threshold_must_exceed_slop(self):
        with pytest.raises(ConfigError, match="jump_back_reset must exceed slop"):
            ApproximateTimePairer(0.05, 5, jump_back_reset=0.05)


class TestMessageFiltersAdapterReset:
    def test_jump_back_rebuilds_the_synchroniser_and_reports(self, monkeypatch):
        fake = stand_in_message_filters()
        monkeypatch.setitem(sys.modules, "message_filters", fake)
        jumps = []
        adapter = make_synchroniser(0.01, 5, prefer_message_filters=True, jump_back_reset=1.0,
                                    on_clock_jump=lambda *args: jumps.append(args))
        assert not isinstance(adapter, ApproximateTimePairer)
        assert len(play(adapter, 100 * S, 5, thermal_lag_ms=0)) == 5
        assert len(play(adapter, 20 * S, 5, thermal_lag_ms=0)) == 5
        assert jumps == [("visible", 100 * S + 400 * MS, 20 * S)]
        assert adapter.counters.resets == 1 and adapter.counters.matched == 10
        assert fake.ApproximateTimeSynchronizer.created == 2

    def test_without_the_reset_rule_the_stand_in_stalls(self, monkeypatch):
        fake = stand_in_message_filters()
        monkeypatch.setitem(sys.modules, "message_filters", fake)
        adapter = make_synchroniser(0.01, 5, prefer_message_filters=True,
                                    jump_back_reset=math.inf)
        play(adapter, 100 * S, 5, thermal_lag_ms=0)
        assert play(adapter, 20 * S, 5, thermal_lag_ms=0) == []
        assert adapter.counters.resets == 0
