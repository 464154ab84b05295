"""The soak script ``benchmarks/soak_node.py`` in its CI form, and the figures it computes.

The short run starts the real node, camera and recorder processes (40 s of 30 Hz 640x480
traffic, 12 s warm-up, the 113-parameter mini-model so that a loaded 2-core machine keeps
up) and checks the report; the long run (30 minutes, the node's default model) is done by
hand: see ``benchmarks/README_soak.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "soak_node.py"
sys.path.insert(0, str(SCRIPT.parent))

from _soak_analysis import (ProcessSample, delivery_summary, evaluate_checks,  # noqa: E402
                            memory_summary)

SHORT_RUN = ["--duration", "40", "--warmup", "12", "--sample-interval", "0.5",
             "--progress-interval", "10", "--model", "lutfuse-mini", "--threads", "1"]


def _soak(out: Path, *options: str, timeout: float = 170.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *options],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _series(rss: list[float], interval: float = 1.0, start: float = -5.0) -> list[ProcessSample]:
    return [ProcessSample(t_s=start + i * interval, rss_mib=value, threads=20, fds=30,
                          cpu_s=i * 0.5, load1=1.0) for i, value in enumerate(rss)]


def test_memory_summary_measures_growth_of_the_floor_after_warmup_only():
    rng = np.random.default_rng(0)
    # Model loading before the warm-up ends (t < 10 s), then a flat level with allocator noise
    # and a 30 MiB saw-tooth: buffers allocated and freed again, sampled at random phases.
    flat = [50.0] * 5 + [300.0] * 10 + list(400 + rng.uniform(0, 3, 300))
    flat = [value + 30 * (rng.random() < 0.6) * (i >= 15) for i, value in enumerate(flat)]
    summary = memory_summary(_series(flat), warmup_s=10.0)
    assert abs(summary["warmup_rss_mib"] - 400) < 1 and summary["max_growth_mib"] < 2
    assert summary["peak_growth_mib"] < 4 and summary["max_rss_mib"] > 430
    assert abs(summary["growth_mib_per_hour"]) < 100
    assert summary["loaded_rss_mib"] == 50.0

    leak = [400 + 0.05 * i + 30 * (i % 3 == 0) for i in range(600)]  # 3 MiB per minute
    summary = memory_summary(_series(leak, start=0.0), warmup_s=60.0)
    # Windows of 54 s from t = 60 s; the last starts at 545 s.
    assert summary["max_growth_mib"] == pytest.approx(0.05 * (545 - 60), abs=1.0)
    assert summary["growth_mib_per_hour"] == pytest.approx(180.0, rel=0.05)
    checks = evaluate_checks(summary, {"input_hz": 30.0, "output_hz": 30.0},
                             {"pipeline_ms": {"p50": 10.0}}, max_growth_mib=20.0,
                             min_fraction=0.7, min_rate_hz=0.0)
    assert [c["passed"] for c in checks] == [False, True]


def test_delivered_rate_bound_follows_a_model_slower_than_the_input():
    memory = memory_summary(_series([400.0] * 30), warmup_s=5.0)
    slow_model = {"pipeline_ms": {"p50": 200.0}}  # can fuse 5 pairs/s of the 30 offered

    def passed(output_hz: float) -> bool:
        return evaluate_checks(memory, {"input_hz": 30.0, "output_hz": output_hz}, slow_model,
                               max_growth_mib=20.0, min_fraction=0.7, min_rate_hz=0.0)[1]["passed"]

    assert passed(4.0) and not passed(3.0)


def test_delivery_counts_only_pairs_after_warmup_and_their_latency():
    t0 = 1_000_000_000_000
    published = t0 + np.arange(300, dtype=np.int64) * 100_000_000  # 10 Hz for 30 s
    kept = published[::2]  # every other pair fused, 25 ms later
    received = np.stack([kept, kept + 25_000_000], axis=1)
    delivery = delivery_summary(published, received, t0, warmup_s=10.0)
    assert delivery["pairs_in"] == 200 and delivery["delivered"] == 100
    assert delivery["input_hz"] == pytest.approx(10.0) and delivery["output_hz"] == \
        pytest.approx(5.0)
    assert delivery["end_to_end_ms"]["p50"] == pytest.approx(25.0)


@pytest.mark.ros
@pytest.mark.slow
def test_short_soak_reports_sane_figures_and_never_overwrites(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    out = tmp_path / "soak"
    out.mkdir()
    previous = out / "soak_report.json"
    previous.write_text('{"previous": true}\n')

    refused = _soak(out, *SHORT_RUN, timeout=60)
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
    assert previous.read_text() == '{"previous": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["soak_report.json"]  # nothing started
    bad = _soak(tmp_path / "other", "--duration", "10", "--warmup", "10", timeout=60)
    assert bad.returncode == 2 and "--warmup" in bad.stderr

    started = time.monotonic()
    run = _soak(out, *SHORT_RUN, "--force")
    log = f"exit {run.returncode} after {time.monotonic() - started:.0f} s\n{run.stdout}\n" \
          f"{run.stderr}"
    assert run.returncode == 0, log
    report = json.loads(previous.read_text())
    assert report["schema"] == "lutfuse-soak/1" and report["complete"] and report["passed"], log
    assert report["processes"]["exit_codes"] == {"camera": 0, "recorder": 0, "node": 0}
    assert not report["processes"]["killed"]
    node_cmdline = Path(f"/proc/{report['processes']['node_pid']}/cmdline")
    assert not node_cmdline.exists() or b"lutfuse" not in node_cmdline.read_bytes()

    delivery = report["delivery"]
    measured_s = 40 - 12
    assert delivery["pairs_in"] >= 0.5 * 30 * measured_s, log  # the camera kept ~30 Hz
    assert 0 < delivery["delivered"] <= delivery["pairs_in"]
    assert delivery["output_hz"] > 0 and 0 < delivery["fraction"] <= 1
    latency = delivery["end_to_end_ms"]
    assert latency["count"] == delivery["delivered"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"], latency

    memory = report["memory"]
    assert memory["samples_after_warmup"] >= measured_s, memory  # every 0.5 s, some missed
    assert len(memory["windows"]) >= 2
    assert memory["warmup_rss_mib"] > 50 and memory["final_rss_mib"] > 50  # a real process
    assert memory["max_growth_mib"] <= report["config"]["max_growth_mib"], memory
    times = [s["t_s"] for s in report["samples"]]
    assert times == sorted(times) and times[0] < 0 < times[-1]

    diagnostics = report["diagnostics"]
    assert diagnostics["statuses"] > 0 and "lutfuse-mini" in diagnostics["hardware_id"]
    assert diagnostics["totals"]["published"] >= delivery["delivered"]
    assert diagnostics["pipeline_ms"]["p50"] > 0
    assert report["timeline"] and all(b["input_hz"] > 0 for b in report["timeline"])
    assert "check rss_growth" in run.stdout and "PASS" in run.stdout

    assert (out / "soak_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = out / "raw"
    for name in ("node.log", "published.csv", "received.csv", "diagnostics.jsonl"):
        assert (raw / name).stat().st_size > 0, name
    assert sorted(p.name for p in out.iterdir()) == ["raw", "soak_plot.png", "soak_report.json"]


@pytest.mark.ros
@pytest.mark.slow
def test_interrupt_stops_every_process_and_keeps_the_previous_report(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    out = tmp_path / "soak"
    out.mkdir()
    (out / "soak_report.json").write_text('{"previous": true}\n')
    console = tmp_path / "console.txt"
    with open(console, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--out", str(out), "--force", "--duration", "300",
             "--warmup", "1", "--sample-interval", "1", "--model", "lutfuse-mini",
             "--threads", "1"], cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while b"traffic started" not in console.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, \
                console.read_text()
            time.sleep(0.2)
        time.sleep(4)  # past the 1 s warm-up
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 130, console.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = console.read_text()
    assert (out / "soak_report.json").read_text() == '{"previous": true}\n'
    kept = [p for p in out.iterdir() if p.name.startswith("interrupted-")]
    assert len(kept) == 1, text
    report = json.loads((kept[0] / "soak_report.json").read_text())
    assert report["outcome"] == "interrupted" and not report["complete"]
    assert report["processes"]["exit_codes"] == {"camera": 0, "recorder": 0, "node": 0}, text
    assert report["delivery"]["delivered"] > 0
    pid = report["processes"]["node_pid"]
    assert not Path(f"/proc/{pid}").exists() or \
        b"lutfuse" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], os.listdir(out)
