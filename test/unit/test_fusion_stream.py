"""FusionStream: camera frames in, fused frames out, on a worker thread, without ROS.

Real frames (the demo scene), the shipped mini-model, the real pairer and worker: pairs are
fused and delivered with their frames, idle and rate-limited pairs are counted and not fused,
undecodable and mismatched pairs go to the failure callback, and a live retune re-pairs the
frames waiting for a partner.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lutfuse_ros.errors import InputError
from lutfuse_ros.image_codec import encode_image
from lutfuse_ros.ros.model_loading import load_step
from lutfuse_ros.settings.node_settings import parse_settings
from lutfuse_ros.stream.camera_frame import CameraFrame, UndecodableFrame
from lutfuse_ros.stream.fusion_stream import FusionStream
from lutfuse_ros.stream.step_slot import StepSlot
from lutfuse_testing.camera_frames import synthetic_pair

_MS = 1_000_000


class Recorder:
    """What a stream reports: delivered pairs, failures and counted events."""

    def __init__(self) -> None:
        self.delivered, self.failures, self.events = [], [], []
        self.wanted = True
        self.done = threading.Condition()

    def deliver(self, pair) -> None:
        with self.done:
            self.delivered.append(pair)
            self.done.notify_all()

    def failed(self, pair, error) -> None:
        with self.done:
            self.failures.append((pair, error))
            self.done.notify_all()

    def wait_for(self, count: int) -> bool:
        """Wait until ``count`` pairs were delivered or failed."""
        with self.done:
            return self.done.wait_for(
                lambda: len(self.delivered) + len(self.failures) >= count, timeout=30)

    def settle(self, stream) -> bool:
        """Wait until the worker has fused, failed or dropped every pair handed to it."""
        with self.done:
            return self.done.wait_for(
                lambda: len(self.delivered) + len(self.failures) + stream.dropped
                >= self.events.count("pairs") - self.events.count("idle")
                - self.events.count("rate_limited"), timeout=30)


@pytest.fixture(scope="module")
def slot():
    settings = parse_settings({"artifact": "lutfuse-mini", "backend": "torch",
                               "backend_threads": 1}, fill_defaults=True)
    slot = StepSlot(load_step(settings))
    yield slot
    slot.step.pipeline.close()


def make_stream(slot, recorder, **values) -> FusionStream:
    settings = parse_settings(values, fill_defaults=True)
    stream = FusionStream(settings.sync, settings.output.max_rate, slot,
                          deliver=recorder.deliver, on_failure=recorder.failed,
                          wants_output=lambda: recorder.wanted,
                          count=recorder.events.append, now_ns=lambda: 0)
    stream.start()
    return stream


def frames(index: int, stamp_ms: int, *, compressed_visible: bytes | None = None):
    visible, thermal = synthetic_pair(index, 64, 48)
    stamp_ns = stamp_ms * _MS
    if compressed_visible is not None:
        visible_frame = CameraFrame("visible", stamp_ns, "camera",
                                    compressed=compressed_visible)
    else:
        visible_frame = CameraFrame.from_array("visible", visible, "bgr8", stamp_ns, "camera")
    return visible_frame, CameraFrame.from_array("thermal", thermal, "mono8", stamp_ns, "ir")


def feed(stream, pair_frames) -> None:
    for frame in pair_frames:
        stream.add(frame)


def test_pairs_are_fused_on_the_worker_and_delivered_with_their_frames(slot):
    recorder = Recorder()
    stream = make_stream(slot, recorder)
    sent = [frames(i, 100 + 33 * i) for i in range(4)]
    for pair in sent:
        feed(stream, pair)
        assert recorder.settle(stream)
    assert stream.stop(10)
    assert recorder.events.count("pairs") == 4 and not recorder.failures
    for pair in recorder.delivered:
        visible, thermal = pair.visible, pair.thermal
        assert visible.stamp_ns == thermal.stamp_ns and pair.fused.frame_id == "camera"
        assert pair.fused.stamp_ns == visible.stamp_ns and pair.step is slot.step
        expected = slot.step.pipeline.fuse(visible.array, thermal.array)
        assert np.array_equal(pair.fused.array, expected)
    assert len(recorder.delivered) + stream.dropped == recorder.events.count("pairs")
    assert stream.sync_counters()["matched"] == recorder.events.count("pairs")


def test_idle_and_rate_limited_pairs_are_counted_and_not_fused(slot):
    recorder = Recorder()
    recorder.wanted = False
    stream = make_stream(slot, recorder, **{"output.max_rate": 10.0})
    for i in range(3):
        feed(stream, frames(i, 100 + 33 * i))
    assert recorder.events.count("idle") == recorder.events.count("pairs") >= 2
    recorder.wanted = True
    for i in range(3, 9):  # 30 Hz stamps at max_rate 10: one pair in three passes
        feed(stream, frames(i, 100 + 33 * i))
        assert recorder.settle(stream)
    assert stream.stop(10)
    fused_or_failed = len(recorder.delivered) + len(recorder.failures)
    assert recorder.events.count("rate_limited") >= 3
    assert fused_or_failed + recorder.events.count("rate_limited") + stream.dropped + \
        recorder.events.count("idle") == recorder.events.count("pairs")
    assert not recorder.failures


def test_undecodable_and_mismatched_pairs_go_to_the_failure_callback(slot):
    recorder = Recorder()
    stream = make_stream(slot, recorder)
    visible, _ = synthetic_pair(0, 64, 48)
    truncated = encode_image(visible, "jpeg")[:200]
    feed(stream, frames(0, 100, compressed_visible=truncated))
    assert recorder.settle(stream)
    feed(stream, frames(1, 133))
    assert recorder.wait_for(2) and recorder.settle(stream)
    _, error = recorder.failures[0]
    assert isinstance(error, UndecodableFrame) and error.streams == ("visible",)
    assert "visible compressed image at stamp 0.100000000 did not decode" in str(error)
    small = CameraFrame.from_array("thermal", np.zeros((24, 32), np.uint8), "mono8",
                                   166 * _MS)
    stream.add(frames(2, 166)[0])
    stream.add(small)
    assert recorder.settle(stream)
    feed(stream, frames(3, 200))
    assert recorder.wait_for(4) and recorder.settle(stream)
    assert stream.stop(10) and stream.dropped == 0
    kinds = [type(error) for _, error in recorder.failures]
    assert kinds == [UndecodableFrame, InputError]
    assert "thermal image is 32x24" in str(recorder.failures[1][1])
    assert len(recorder.delivered) == 2  # the stream went on after each failure


def test_retune_carries_the_frames_waiting_for_a_partner_into_the_new_pairer(slot):
    recorder = Recorder()
    stream = make_stream(slot, recorder, **{"sync.slop": 0.005})
    visible, _ = frames(0, 100)
    stream.add(visible)  # waits for a thermal partner
    settings = parse_settings({"sync.slop": 0.02}, fill_defaults=True)
    stream.retune(settings.sync, 0.0)
    _, thermal = frames(0, 110)  # 10 ms away: a partner only under the new slop
    stream.add(thermal)
    stream.add(frames(1, 200)[0])  # the next visible frame settles the pair
    assert recorder.events.count("pairs") == 1
    assert recorder.wait_for(1)
    assert stream.stop(10)
    first = recorder.delivered[0]
    assert (first.visible.stamp_ns, first.thermal.stamp_ns) == (100 * _MS, 110 * _MS)
