"""``lutfuse replay``: play a bag through the fusion node, record its output, report.

Steps of :func:`run_replay`:

1. scan the bag (topics, stamps; order problems counted) and predict the node's pairs with
   its synchronisation parameters (:func:`~lutfuse_ros.bag.player.plan_playback`);
2. start the node as a child process on a private ``ROS_DOMAIN_ID`` (``node="auto"``) or
   find a running one (``node="external"``), and wait until it is connected;
3. publish the visible and thermal messages with their recorded timing (scaled by ``rate``)
   or as fast as possible with at most ``max_in_flight`` pairs in flight, while recording
   every fused image into the output rosbag2;
4. wait for the last outputs and a final ``/diagnostics`` message, stop the node, finalise
   the output bag (also after Ctrl-C: what was recorded is kept, unless it would replace an
   earlier result given ``--force``), and build the report.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lutfuse_ros.bag.common import BagError, cdr_header_stamp_ns
from lutfuse_ros.bag.node_process import NodeProcess, choose_domain_id
from lutfuse_ros.bag.player import (
    THERMAL,
    VISIBLE,
    FlowControl,
    Pacer,
    PlaybackPlan,
    plan_playback,
)
from lutfuse_ros.bag.reader import ImageBagReader, decode_thermal, decode_visible_bgr
from lutfuse_ros.bag.replay_options import ReplayOptions
from lutfuse_ros.bag.records import (
    ReplayRecords,
    diagnostic_statuses,
    sample_triples,
    summarise,
    temporal_window,
)
from lutfuse_ros.bag.report import (
    ReplayReport,
    fusion_metric_means,
    report_paths,
    save_report,
    temporal_stability_of_samples,
)
from lutfuse_ros.bag.writer import ThreadedBagWriter
from lutfuse_ros.settings.node_settings import load_sync_settings

LOG = logging.getLogger(__name__)
#: seconds to wait after the last output for a fresh ``/diagnostics`` message.
DIAGNOSTICS_WAIT_S = 2.5


@dataclass
class ReplayOutcome:
    """Result of :func:`run_replay`: the report and the files written."""

    report: ReplayReport
    files: list[Path] = field(default_factory=list)


def _progress(total: int, description: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="msg", disable=not enabled, leave=False)


def scan_bag(options: ReplayOptions) -> tuple[str, str, PlaybackPlan, dict[str, Any]]:
    """Topics, predicted pairs and stamp-order problems of the bag (one pass, nothing kept)."""
    with ImageBagReader(options.bag) as reader:
        visible, thermal = reader.resolve_topics(options.visible_topic, options.thermal_topic)
        total = sum(reader.topics[t].count for t in (visible, thermal))
        streams, stamps = [], []
        with _progress(total, "scan", options.progress) as bar:
            for message in reader.messages((visible, thermal), order=options.clock):
                streams.append(VISIBLE if message.topic == visible else THERMAL)
                stamps.append(message.stamp_ns)
                bar.update()
        issues = {topic: asdict(found) for topic, found in reader.order_issues.items()}
    for topic, found in issues.items():
        if found["backwards"]:
            LOG.warning("%d header stamp(s) on %s go backwards (first at message %d); the node "
                        "drops such frames as late, --clock stamp sorts them", found["backwards"],
                        topic, found["first_index"])
    sync = load_sync_settings(options.params_file, options.node_params)
    plan = plan_playback(streams, stamps, sync)
    if not plan.pairs:
        raise BagError(f"no visible/thermal pair of {options.bag} is within the node's slop of "
                       f"{sync.slop} s (offset {sync.thermal_offset} s): nothing would be fused")
    return visible, thermal, plan, {"stamp_order": issues, "sync_settings": asdict(sync)}


def run_replay(options: ReplayOptions, stop: threading.Event | None = None) -> ReplayOutcome:
    """Replay ``options.bag`` through the fusion node (see the module doc).

    Args:
        options: what to do.
        stop: set it (e.g. from a SIGINT handler) to stop early; the run then finishes
            cleanly: child node stopped, output bag finalised, report written, except where
            they would replace earlier results (``force``): those are kept and the partial
            ones discarded.

    Raises:
        FileExistsError: an output exists and ``options.force`` is false.
        BagError: unreadable bag, missing topics, the node failed or never connected.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    existing = {p for p in options.output_paths() if p.exists()}
    if existing and not options.force:
        raise FileExistsError(f"refusing to overwrite {', '.join(sorted(map(str, existing)))} "
                              "(use --force)")
    visible_topic, thermal_topic, plan, extra_sync = scan_bag(options)
    stride = max(1, math.ceil(len(plan.pairs) / options.metrics_frames)
                 if options.metrics_frames else 0)
    sampled = plan.pairs[::stride][:options.metrics_frames]
    window = temporal_window(plan.pairs, options.temporal_frames)
    records = ReplayRecords({v for v, _ in sampled + window}, {t for _, t in sampled + window})
    flow = FlowControl([v for v, _ in plan.pairs], options.max_in_flight, options.stall_timeout)
    environ = dict(os.environ)
    if options.node == "auto":
        domain_id = choose_domain_id(options.domain_id, environ)
    else:
        domain_id = options.domain_id if options.domain_id is not None else int(
            environ.get("ROS_DOMAIN_ID", "0") or 0)
    node = _start_node(options, domain_id, environ) if options.node == "auto" else None
    writer: ThreadedBagWriter | None = None
    session = None
    timing: dict[str, float] = {}
    try:
        from lutfuse_ros.bag.ros_session import RosReplaySession

        session = RosReplaySession(
            domain_id, options.namespace,
            on_fused=lambda cdr, when: _on_fused(cdr, when, records, flow, writer, session),
            on_diagnostics=lambda msg: records.diagnostics_received(diagnostic_statuses(msg),
                                                                    time.monotonic()))
        if options.output is not None:
            writer = ThreadedBagWriter(options.output, options.storage, options.force,
                                       (session.topics["fused"],))
        failure = node.exit_message if node is not None else (lambda: None)
        LOG.info("waiting for the fusion node on ROS_DOMAIN_ID=%d ...", domain_id)
        if session.wait_for_node(options.node_timeout, failure, stop):
            _play(options, plan, (visible_topic, thermal_topic), session, records, flow,
                  (node, writer), stop, timing)
            _drain(options, plan, records, flow, stop, timing)
            _check_health(node, session, writer)
    except KeyboardInterrupt:
        stop.set()
    except BaseException:
        if writer is not None:
            writer.abort()
            writer = None
        raise
    finally:
        if node is not None:
            code = node.stop()
            LOG.info("fusion node stopped (exit code %s)", code)
        if session is not None:
            session.close()
    keep_previous = _kept_on_interrupt(options, existing, stop.is_set())
    if writer is not None:
        if options.output in keep_previous:
            writer.abort()
        else:
            writer.close()
    setup = {"bag": str(options.bag), "output_bag": str(options.output or "") or None,
             "mode": ("as fast as possible" if options.as_fast_as_possible
                      else f"real time x{options.rate:g}"),
             "node": options.node, "domain_id": domain_id, "namespace": options.namespace,
             "params_file": str(options.params_file or "") or None,
             "node_params": list(options.node_params), "visible_topic": visible_topic,
             "thermal_topic": thermal_topic,
             "fused_topic": session.topics["fused"] if session else None,
             "clock": options.clock, "max_in_flight": options.max_in_flight,
             "node_log": str(options.node_log_path() or "") or None,
             "node_pid": node.pid if node is not None else None}
    extra_sync["flow_control_timeouts"] = flow.timeouts
    report = summarise(plan, records, setup, extra_sync,
                       timing.get("play_end", 0.0) - timing.get("play_start", 0.0),
                       time.monotonic() - started, interrupted=stop.is_set())
    report.metrics = _metrics(records, plan, sorted(v for v, _ in sampled))
    triples, _ = sample_triples(records, plan, [v for v, _ in window])
    report.temporal = temporal_stability_of_samples([_decoded(triple) for triple in triples])
    files = ([options.output] if options.output is not None
             and options.output not in keep_previous else [])
    if options.report_prefix is not None:
        if not keep_previous.intersection(report_paths(options.report_prefix)):
            files += save_report(report, options.report_prefix, options.force)
        if options.node_log_path() is not None:
            files.append(options.node_log_path())
    return ReplayOutcome(report, files)


def _kept_on_interrupt(options: ReplayOptions, existing: set[Path], interrupted: bool
                       ) -> set[Path]:
    """The earlier results an interrupted run must not replace (empty when it finished).

    With ``--force`` a finished run replaces earlier results; an interrupted one keeps them
    (its partial recording and report are discarded), so Ctrl-C never trades a complete
    result for a partial one. Without earlier results the partial ones are kept.
    """
    if not interrupted or not existing:
        return set()
    kept = {p for p in options.output_paths() if p in existing}
    if options.report_prefix is not None and kept.intersection(report_paths(
            options.report_prefix)):
        kept.update(report_paths(options.report_prefix))  # a report is kept as a whole
    if kept:
        LOG.warning("interrupted: keeping the earlier %s; this run's partial results for them "
                    "are discarded", ", ".join(sorted(map(str, kept))))
    return kept


def _start_node(options: ReplayOptions, domain_id: int, environ: dict[str, str]) -> NodeProcess:
    """Start the fusion node child with the options' parameters and namespace."""
    ros_args: list[str] = []
    if options.params_file is not None:
        ros_args += ["--params-file", str(options.params_file)]
    for text in options.node_params:
        ros_args += ["-p", text]
    if options.namespace.strip("/"):
        ros_args += ["-r", f"__ns:=/{options.namespace.strip('/')}"]
    log_path = options.node_log_path()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("starting the fusion node on ROS_DOMAIN_ID=%d", domain_id)
    return NodeProcess(ros_args, domain_id, environ, log_path)


def _on_fused(cdr: bytes, when: float, records: ReplayRecords, flow: FlowControl,
              writer: ThreadedBagWriter | None, session: Any) -> None:
    """Executor-thread callback of every fused image: note it, release flow, record it."""
    stamp = cdr_header_stamp_ns(cdr)
    if records.received(stamp, when, cdr) == 1:
        LOG.info("first fused image received (stamp %d ns)", stamp)
    flow.output_received(stamp)
    if writer is not None:
        writer.put(session.topics["fused"], time.time_ns(), cdr)


def _play(options: ReplayOptions, plan: PlaybackPlan, topics: tuple[str, str], session: Any,
          records: ReplayRecords, flow: FlowControl,
          watched: tuple[NodeProcess | None, ThreadedBagWriter | None],
          stop: threading.Event, timing: dict[str, float]) -> None:
    """Publish every message of the bag in playback order (paced or flow-controlled).

    ``watched`` (the node process, the output writer) is checked for failures as it plays.
    """
    visible_topic = topics[0]
    node, writer = watched
    pacer = Pacer(options.rate)
    timing["play_start"] = time.monotonic()
    LOG.info("playing %d messages %s", len(plan.streams),
             "as fast as possible" if options.as_fast_as_possible
             else f"in real time x{options.rate:g}")
    with ImageBagReader(options.bag) as reader, \
            _progress(len(plan.streams), "replay", options.progress) as bar:
        messages = reader.messages(topics, order=options.clock)
        released = 0
        for index, message in enumerate(messages):
            if options.as_fast_as_possible:
                if not flow.wait_for_slot(released, stop):
                    break
                released = plan.releases.get(index, released - 1) + 1
            elif not pacer.wait(message.log_ns if options.clock == "log" else message.stamp_ns,
                                stop):
                break
            if index % 16 == 0:
                _check_health(node, session, writer)
            stream = VISIBLE if message.topic == visible_topic else THERMAL
            now = time.monotonic()
            session.publish(stream, message.cdr)
            records.published(stream, message.stamp_ns, now, message.cdr)
            timing["play_end"] = now
            bar.update()
            if index % 30 == 0:
                bar.set_postfix(fused=records.output_count(), refresh=False)


def _check_health(node: NodeProcess | None, session: Any,
                  writer: ThreadedBagWriter | None) -> None:
    """Raise when the node process died, a ROS callback or the bag writer failed."""
    failed = node.exit_message() if node is not None else None
    if failed:
        raise BagError(failed)
    for what, error in (("handling a fused image", session.callback_error),
                        ("writing the output bag", writer.error if writer else None)):
        if error is not None:
            raise BagError(f"{what} failed: {error!r}") from error


def _drain(options: ReplayOptions, plan: PlaybackPlan, records: ReplayRecords,
           flow: FlowControl, stop: threading.Event, timing: dict[str, float]) -> None:
    """Wait for the outputs still due, then for a fresh ``/diagnostics`` message."""
    if stop.is_set():
        return
    due = len(plan.pairs) - plan.held_at_end
    quiet_since = timing.get("play_end", time.monotonic())
    while flow.resolved < due and not stop.is_set():
        quiet_since = max(quiet_since, records.last_output_time() or quiet_since)
        if time.monotonic() - quiet_since > options.drain_timeout:
            break
        stop.wait(0.05)
    drained = time.monotonic()
    while not stop.is_set() and time.monotonic() - drained < DIAGNOSTICS_WAIT_S:
        if (records.diagnostics_time or 0.0) > drained:
            break
        stop.wait(0.05)


def _decoded(triple: tuple[bytes, bytes, bytes]) -> tuple:
    """``(fused BGR, visible BGR, thermal)`` arrays of a CDR triple."""
    fused, visible, thermal = triple
    return decode_visible_bgr(fused), decode_visible_bgr(visible), decode_thermal(thermal)


def _metrics(records: ReplayRecords, plan: PlaybackPlan, stamps: list[int]) -> dict[str, Any]:
    """Fusion metrics of the kept fused frames of ``stamps`` against their sources."""
    triples, missing = sample_triples(records, plan, stamps)
    metrics = fusion_metric_means([_decoded(triple) for triple in triples])
    if missing:
        metrics["skipped"].append(f"{missing} fused frame(s) without their sources")
    return metrics
