"""Process orchestration of the soak benchmark: node, camera and recorder on a private graph.

:class:`SoakRun` starts ``lutfuse node`` (own ``ROS_DOMAIN_ID`` and namespace), waits until it
is active, starts the recorder and then the camera (``python -m lutfuse_testing.camera_traffic
stream-record`` and ``stream``: the tests' camera simulator in streaming mode), samples the node
process every ``sample_interval`` seconds while the camera publishes for ``duration`` seconds,
prints progress, and stops everything in order: camera, recorder (after the last fused images
arrived), node. The processes are supervised by :class:`lutfuse_testing.processes.ProcessGroup`,
the integration tests' supervisor too: each stop is a stop file (traffic), then SIGINT,
SIGTERM, SIGKILL; the children also get SIGTERM if this process dies (``PR_SET_PDEATHSIG``).
Everything lands in a work folder:
the three logs, ``node_params.yaml`` and the CSV/JSONL files of
:mod:`lutfuse_testing.camera_stream`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from _soak_analysis import ProcessSample, memory_summary, percentiles, read_process_sample

from lutfuse_testing.camera_stream import (DIAGNOSTICS_JSONL, PUBLISHED_CSV, RECEIVED_CSV,
                                           RECORDER_READY)
from lutfuse_testing.processes import ProcessGroup

#: soak role -> role of ``python -m lutfuse_testing.camera_traffic``.
TRAFFIC_ROLES = {"camera": "stream", "record": "stream-record"}
_POLL_S = 0.1


class RunFailed(RuntimeError):
    """A process of the run failed to start or exited early; the message says which."""


class CsvTail:
    """New complete lines of a growing integer CSV file (the header line is skipped)."""

    def __init__(self, path: Path, columns: int) -> None:
        self._path, self._columns, self._offset = path, columns, 0
        self.rows: list[tuple[int, ...]] = []

    def read(self) -> list[tuple[int, ...]]:
        """Append and return the rows completed since the last call."""
        try:
            with open(self._path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        new = []
        for line in chunk[:end].decode("ascii").splitlines():
            parts = line.split(",")
            if len(parts) == self._columns and all(p.lstrip("-").isdigit() for p in parts):
                new.append(tuple(int(p) for p in parts))
        self.rows.extend(new)
        return new

    def array(self) -> np.ndarray:
        """All rows so far, ``(N, columns)`` int64."""
        return np.asarray(self.rows, dtype=np.int64).reshape(-1, self._columns)


@dataclass
class RunData:
    """What a run collected (see :mod:`_soak_analysis` for its figures)."""

    t0_ns: int | None = None
    samples: list[ProcessSample] = field(default_factory=list)
    published: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    received: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    statuses: list[dict] = field(default_factory=list)
    outcome: str = "complete"
    node_pid: int | None = None
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)


class SoakRun:
    """One soak run (see the module docstring).

    Args:
        args: the parsed options of ``soak_node.py``.
        work: folder for logs and raw data (exists, empty).
        progress: receives ``line(text)`` for each progress report and ``advance(t_s,
            text)`` at every poll (seconds since the first pair, short status).
    """

    def __init__(self, args, work: Path, progress) -> None:
        self._args, self._work, self._progress = args, work, progress
        self._namespace = f"/lutfuse_soak_{os.getpid()}"
        self._group = ProcessGroup(work, args.domain_id, self._namespace)
        self.data = RunData()
        self._published = CsvTail(work / PUBLISHED_CSV, 2)
        self._received = CsvTail(work / RECEIVED_CSV, 2)
        self._samples_ns: list[tuple[int, ProcessSample]] = []
        self._next_sample = 0.0
        self._last_report = (time.monotonic(), 0, 0)
        self._status = ""

    def log(self, name: str, tail: int = 4000) -> str:
        """The last ``tail`` characters of a process's output."""
        return self._group.log(name, tail)

    def _node_command(self) -> list[str]:
        args = self._args
        overrides: dict = {"diagnostics": {"period": args.diagnostics_period}}
        for key, value in (("artifact", args.model), ("backend", args.backend),
                           ("backend_threads", args.threads)):
            if value is not None:
                overrides[key] = value
        params = self._work / "node_params.yaml"
        params.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides}}))
        return self._group.node_command(params)

    def _traffic_command(self, role: str, *options: str) -> list[str]:
        return [sys.executable, "-m", "lutfuse_testing.camera_traffic", TRAFFIC_ROLES[role],
                "--work", str(self._work), "--stop-file", str(self._work / f"stop_{role}"),
                *options, *self._group.ros_args()]

    def run(self) -> RunData:
        """Start, soak, stop. KeyboardInterrupt stops everything cleanly and re-raises."""
        args = self._args
        try:
            node = self._group.start("node", self._node_command())
            self.data.node_pid = node.pid
            self._wait("the node to become active", args.start_timeout,
                       lambda: "]: active: " in self.log("node", 100_000))
            self._group.start("recorder", self._traffic_command("record", "--namespace",
                                                                self._namespace))
            self._wait("the recorder", 60, (self._work / RECORDER_READY).exists)
            self._group.start("camera", self._traffic_command(
                "camera", "--rate", str(args.rate), "--size", *map(str, args.size),
                "--visible-encoding", args.visible_encoding, "--thermal-encoding",
                args.thermal_encoding, "--video-dir", str(args.video_dir)))
            self._wait("the first published pair", 60, lambda: bool(self._published.read()))
            self.data.t0_ns = self._published.rows[0][0]
            self._last_report = (time.monotonic(), 0, 0)
            self._progress.line(f"traffic started; soaking for {args.duration:g} s "
                                f"(warm-up {args.warmup:g} s)")
            end_ns = self.data.t0_ns + int(args.duration * 1e9)
            self._wait(None, None, lambda: time.time_ns() >= end_ns)
        except KeyboardInterrupt:
            self.data.outcome = "interrupted"
            raise
        except RunFailed as error:
            self.data.outcome = f"failed: {str(error).splitlines()[0]}"
            raise
        finally:
            self._shutdown()
        return self.data

    def _wait(self, what: str | None, timeout: float | None, condition) -> None:
        """Poll ``condition`` while sampling, checking the processes and reporting progress."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not condition():
            self._tick()
            if deadline is not None and time.monotonic() > deadline:
                raise RunFailed(f"timed out after {timeout:g} s waiting for {what}\n"
                                f"node log:\n{self.log('node')}")
            time.sleep(_POLL_S)
        self._tick()

    def _tick(self) -> None:
        for name, code in self._group.exited().items():
            raise RunFailed(f"{name} exited with {code} during the run\n"
                            f"its log:\n{self.log(name)}")
        now = time.monotonic()
        if now >= self._next_sample:
            self._next_sample = now + self._args.sample_interval
            self._sample()
        if self.data.t0_ns is not None:
            if now - self._last_report[0] >= self._args.progress_interval:
                self._report_progress(now)
            self._progress.advance(self._t_s(), self._status)

    def _t_s(self) -> float:
        return 0.0 if self.data.t0_ns is None else (time.time_ns() - self.data.t0_ns) / 1e9

    def _sample(self) -> None:
        if self.data.node_pid is None:
            return
        wall_ns = time.time_ns()
        sample = read_process_sample(self.data.node_pid, 0.0)
        if sample is not None:
            self._samples_ns.append((wall_ns, sample))

    def _report_progress(self, now: float) -> None:
        self._published.read()
        self._received.read()
        then, published_before, received_before = self._last_report
        new = self._received.rows[received_before:]
        seconds = now - then
        latency = percentiles(np.array([r[1] - r[0] for r in new], dtype=np.float64) / 1e6)
        rss = self._samples_ns[-1][1].rss_mib if self._samples_ns else float("nan")
        memory = memory_summary(self._timed_samples(), self._args.warmup)
        growth = " (warming up)" if memory["max_growth_mib"] is None else \
            f" (floor {memory['final_rss_mib']:.1f}, max growth {memory['max_growth_mib']:+.1f})"
        p50 = "n/a" if latency["p50"] is None else f"{latency['p50']:.0f}"
        p99 = "n/a" if latency["p99"] is None else f"{latency['p99']:.0f}"
        self._status = f"RSS {rss:.0f} MiB, out {len(new) / seconds:.1f} Hz, p50 {p50} ms"
        self._progress.line(
            f"[{self._t_s():6.0f}/{self._args.duration:g} s] node RSS {rss:.1f} MiB{growth} | "
            f"in {(len(self._published.rows) - published_before) / seconds:.1f} Hz, out "
            f"{len(new) / seconds:.1f} Hz | end-to-end p50 {p50} ms, p99 {p99} ms")
        self._last_report = (now, len(self._published.rows), len(self._received.rows))

    def _stop(self, name: str, grace: float) -> None:
        """Stop file (traffic roles), then SIGINT, SIGTERM, SIGKILL until it exits."""
        role = "record" if name == "recorder" else name
        stop_file = self._work / f"stop_{role}" if name != "node" else None
        self._group.stop(name, grace, stop_file)

    def _shutdown(self) -> None:
        """Stop camera, recorder, node (in this order) and collect the data; no interrupts."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._stop("camera", 10.0)
            if "recorder" in self._group.processes:
                self._drain()
            self._stop("recorder", 10.0)
            self._sample()
            self._stop("node", 20.0)
            self._group.close()
            self.data.exit_codes, self.data.killed = dict(self._group.exit_codes), \
                list(self._group.killed)
            self._collect()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _drain(self) -> None:
        """Wait until fused images stop arriving (at most ~2 pipeline times, >= 1.5 s)."""
        self._received.read()
        quiet_since, deadline = time.monotonic(), time.monotonic() + 15.0
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.5:
            time.sleep(0.2)
            if self._received.read():
                quiet_since = time.monotonic()

    def _collect(self) -> None:
        self._published.read()
        self._received.read()
        data = self.data
        data.published, data.received = self._published.array(), self._received.array()
        path = self._work / DIAGNOSTICS_JSONL
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    data.statuses.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a killed recorder
                    continue
        for marker in ("stop_camera", "stop_record", RECORDER_READY):
            (self._work / marker).unlink(missing_ok=True)
        data.samples = self._timed_samples()

    def _timed_samples(self) -> list[ProcessSample]:
        """The samples so far with ``t_s`` in seconds since the first published pair."""
        t0 = self.data.t0_ns if self.data.t0_ns is not None else time.time_ns()
        return [replace(sample, t_s=(wall_ns - t0) / 1e9) for wall_ns, sample in self._samples_ns]
