"""Soak test of the ROS 2 fusion node: memory, delivered rate and latency over a long run.

Three processes run on a private ROS domain, as on a vehicle: ``lutfuse node`` (its
defaults from ``config/fuse.yaml``, changed only by ``--model``, ``--backend``, ``--threads``),
a camera publishing visible + thermal pairs at ``--rate`` Hz (real aligned video frames from
``../shared/data/video``, or synthetic ``lutfuse_ros.demo_scene`` frames when that is
missing) and a recorder of ``fused/image`` and ``/diagnostics``. The node process's resident
memory (``/proc/<pid>/status`` VmRSS), threads, file descriptors and CPU time are sampled
every ``--sample-interval`` seconds; memory growth is measured on the floor of the RSS
saw-tooth (the lowest sample per window), see ``_soak_analysis.memory_summary``.

Reported (printed table, ``soak_report.json`` and ``soak_plot.png`` in ``--out``; logs and
raw samples in ``--out/raw``): RSS at warm-up, final, largest growth after warm-up and its
trend per hour; pairs in and fused images out after warm-up (rate and fraction); end-to-end
latency (camera publish to recorder callback) p50/p95/p99/max and its course over time; the
node's own figures from ``/diagnostics`` (pipeline time, latency added on top of it, totals
of failed pairs, dropped images, queue and synchroniser drops).

Exit status: 0 when the checks pass; 1 when the RSS grew by more than ``--max-growth-mib``
after the warm-up, or the output rate fell below ``--min-fraction`` of what the node can
deliver (the input rate, or ``1000 / pipeline p50`` when the model is slower than the input)
or below ``--min-rate``; 2 bad options or an existing report without ``--force``; 3 a
process failed (report in ``--out/failed-<time>``); 130 interrupted (Ctrl-C or SIGTERM: all
processes are stopped, the partial report goes to ``--out/interrupted-<time>``).

Usage::

    python benchmarks/soak_node.py [--duration 1800] [--warmup 60] [--out soak_results]
        [--model lutfuse-mini] [--backend torch] [--threads 2] [--rate 30] [--size 640 480]
        [--visible-encoding bgr8|rgb8] [--thermal-encoding mono16|mono8]
        [--sample-interval 1] [--max-growth-mib 20] [--min-fraction 0.7] [--force]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _soak_analysis import (delivery_summary, diagnostics_summary, evaluate_checks,  # noqa: E402
                            memory_summary, plot_report, render_table, samples_as_dicts,
                            timeline)
from _soak_run import RunData, RunFailed, SoakRun  # noqa: E402

from lutfuse_ros.atomic_files import atomic_output  # noqa: E402
from lutfuse_testing.camera_frames import DEFAULT_VIDEO_DIR, describe_frame_source  # noqa: E402

REPORT_NAME, PLOT_NAME, RAW_NAME = "soak_report.json", "soak_plot.png", "raw"
SCHEMA = "lutfuse-soak/1"
EXIT_PASSED, EXIT_CHECKS_FAILED, EXIT_USAGE, EXIT_RUN_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    """Options of ``benchmarks/soak_node.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=float, default=1800.0,
                        help="seconds of traffic, warm-up included")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds after the first pair before memory growth, rate and "
                             "latency are measured")
    parser.add_argument("--out", type=Path, default=Path("soak_results"),
                        help="output folder (relative to the current directory)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing report, plot and raw folder in --out")
    parser.add_argument("--model", help="node parameter 'artifact' (shipped name or "
                                        ".safetensors path); default: the node's default")
    parser.add_argument("--backend", help="node parameter 'backend'; default: the node's")
    parser.add_argument("--threads", type=int,
                        help="node parameter 'backend_threads'; default: the node's")
    parser.add_argument("--rate", type=float, default=30.0, help="pairs per second")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--visible-encoding", choices=("bgr8", "rgb8"), default="bgr8")
    parser.add_argument("--thermal-encoding", choices=("mono16", "mono8"), default="mono16")
    parser.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR,
                        help="aligned clips vi/*.mp4 + ir/*.mp4 (synthetic frames if absent)")
    parser.add_argument("--sample-interval", type=float, default=1.0,
                        help="seconds between memory samples of the node process")
    parser.add_argument("--progress-interval", type=float, default=60.0,
                        help="seconds between progress lines")
    parser.add_argument("--bin-seconds", type=float,
                        help="width of the timeline bins (default: duration/60, >= 5 s)")
    parser.add_argument("--diagnostics-period", type=float, default=1.0,
                        help="node parameter diagnostics.period (s)")
    parser.add_argument("--max-growth-mib", type=float, default=20.0,
                        help="fail when RSS grows by more than this after the warm-up")
    parser.add_argument("--min-fraction", type=float, default=0.7,
                        help="fail when the output rate is below this fraction of what the "
                             "node can deliver (input rate, or 1000/pipeline p50 if lower)")
    parser.add_argument("--min-rate", type=float, default=0.0,
                        help="fail when the output rate is below this many Hz")
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="seconds allowed for the node to load its model and activate")
    parser.add_argument("--domain-id", type=int, default=1 + (os.getpid() * 11 + 5) % 100,
                        help="ROS_DOMAIN_ID of the run (default: derived from the PID)")
    return parser


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject inconsistent options (exit status 2)."""
    if args.duration <= 0 or args.rate <= 0 or args.sample_interval <= 0:
        parser.error("--duration, --rate and --sample-interval must be > 0")
    if not 0 <= args.warmup < args.duration:
        parser.error(f"--warmup ({args.warmup:g} s) must be >= 0 and < --duration "
                     f"({args.duration:g} s)")
    if args.duration - args.warmup < 2 * args.sample_interval:
        parser.error("the measured part (--duration - --warmup) must span at least two "
                     "--sample-interval")
    if not 0 <= args.domain_id <= 101:
        parser.error("--domain-id must be within 0..101")
    if min(args.size) < 2:
        parser.error("--size must be at least 2x2")
    existing = [args.out / name for name in (REPORT_NAME, PLOT_NAME, RAW_NAME)
                if (args.out / name).exists()]
    if existing and not args.force:
        parser.error(f"{', '.join(map(str, existing))} exist(s); pass --force to overwrite")


class Progress:
    """Progress bar (on a terminal) and periodic log lines."""

    def __init__(self, duration: float) -> None:
        self._bar = tqdm(total=round(duration), unit="s", desc="soak", disable=None,
                         bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}"
                                    "{postfix}]")
        self._total = duration

    def line(self, text: str) -> None:
        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()

    def advance(self, t_s: float, status: str) -> None:
        position = min(max(t_s, 0.0), self._total)
        if position - self._bar.n >= 1 or position >= self._total:
            self._bar.n = round(position)
            self._bar.set_postfix_str(status, refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def build_report(args: argparse.Namespace, data: RunData, frames: tuple[str, str],
                 started: str) -> dict:
    """Every figure of a run, JSON-ready."""
    t0 = data.t0_ns or 0
    published = data.published[:, 0] if data.published.size else np.zeros(0, np.int64)
    memory = memory_summary(data.samples, args.warmup)
    delivery = delivery_summary(published, data.received, t0, args.warmup)
    diagnostics = diagnostics_summary(data.statuses, t0, args.warmup)
    bin_s = args.bin_seconds or max(5.0, args.duration / 60)
    late_ms = data.published[:, 1] / 1e3 if data.published.size else np.zeros(0)
    checks = evaluate_checks(memory, delivery, diagnostics, max_growth_mib=args.max_growth_mib,
                             min_fraction=args.min_fraction, min_rate_hz=args.min_rate)
    loads = [s.load1 for s in data.samples]
    return {
        "schema": SCHEMA, "complete": data.outcome == "complete", "outcome": data.outcome,
        "passed": data.outcome == "complete" and all(c["passed"] for c in checks),
        "started": started, "finished": _now(), "command": [sys.executable, *sys.argv],
        "measured_s": float((published[-1] - t0) / 1e9) if published.size else 0.0,
        "config": {"duration_s": args.duration, "warmup_s": args.warmup,
                   "model": args.model, "backend": args.backend, "threads": args.threads,
                   "rate_hz": args.rate, "size": list(args.size),
                   "visible_encoding": args.visible_encoding,
                   "thermal_encoding": args.thermal_encoding,
                   "sample_interval_s": args.sample_interval, "bin_s": bin_s,
                   "max_growth_mib": args.max_growth_mib, "min_fraction": args.min_fraction,
                   "min_rate_hz": args.min_rate, "domain_id": args.domain_id},
        "frames": {"kind": frames[0], "source": frames[1]},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load1_mean": float(np.mean(loads)) if loads else None,
                    "load1_max": float(np.max(loads)) if loads else None},
        "processes": {"node_pid": data.node_pid, "exit_codes": data.exit_codes,
                      "killed": data.killed},
        "memory": memory, "delivery": delivery, "diagnostics": diagnostics,
        "camera": {"late_ms_p99": float(np.percentile(late_ms, 99)) if late_ms.size else None,
                   "late_ms_max": float(late_ms.max()) if late_ms.size else None},
        "checks": checks, "samples": samples_as_dicts(data.samples),
        "timeline": timeline(published, data.received, t0, bin_s),
        "files": {"plot": PLOT_NAME, "raw": RAW_NAME},
    }


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def write_outputs(report: dict, folder: Path, overwrite: bool) -> None:
    """Plot, then report (the report last: it marks a finished output), via temp + rename."""
    if report["samples"]:
        with atomic_output(folder / PLOT_NAME, overwrite=overwrite) as temporary:
            plot_report(report, temporary)
    with atomic_output(folder / REPORT_NAME, overwrite=overwrite) as temporary:
        temporary.write_text(json.dumps(report, indent=1) + "\n")


def publish_raw(work: Path, out: Path) -> None:
    """Rename the run's work folder to ``out/raw``, replacing an older one (``--force``)."""
    raw = out / RAW_NAME
    old = out / f".{RAW_NAME}-old-{os.getpid()}"
    if raw.exists():
        os.replace(raw, old)
    os.replace(work, raw)
    shutil.rmtree(old, ignore_errors=True)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the soak; return the exit status described in the module docstring."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_options(parser, args)
    # The processes run in the repository root: make paths from the user absolute.
    args.out, args.video_dir = args.out.resolve(), args.video_dir.resolve()
    if args.model and Path(args.model).exists():
        args.model = str(Path(args.model).resolve())
    frames = describe_frame_source(args.video_dir)
    started = _now()
    print(f"soak: model {args.model or 'node default (config/fuse.yaml)'}, backend "
          f"{args.backend or 'node default'}, {args.rate:g} Hz {args.size[0]}x{args.size[1]} "
          f"{args.visible_encoding} + {args.thermal_encoding} for {args.duration:g} s "
          f"(warm-up {args.warmup:g} s), ROS_DOMAIN_ID {args.domain_id}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    if frames[0] != "video":
        print(f"note: {frames[1]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / f".soak-run-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    tqdm.monitor_interval = 0  # no monitor thread: children are forked with a preexec_fn
    progress = Progress(args.duration)
    run = SoakRun(args, work, progress)
    status = EXIT_PASSED
    try:
        progress.line("starting the node (loading the model) ...")
        run.run()
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except RunFailed as error:
        status = EXIT_RUN_FAILED
        print(f"soak failed: {error}", file=sys.stderr, flush=True)
    finally:
        progress.close()
    report = build_report(args, run.data, frames, started)
    print(render_table(report), flush=True)
    if status == EXIT_PASSED:
        publish_raw(work, args.out)
        write_outputs(report, args.out, overwrite=args.force)
        print(f"report: {args.out / REPORT_NAME}, plot: {args.out / PLOT_NAME}, logs and raw "
              f"samples: {args.out / RAW_NAME}/", flush=True)
        return EXIT_PASSED if report["passed"] else EXIT_CHECKS_FAILED
    kept = args.out / f"{'interrupted' if status == EXIT_INTERRUPTED else 'failed'}-" \
                      f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    os.replace(work, kept)
    write_outputs(report, kept, overwrite=False)
    print(f"{run.data.outcome}: nothing in {args.out} was replaced; partial "
          f"report, logs and samples in {kept}/", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
