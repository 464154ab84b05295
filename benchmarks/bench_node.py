"""Latency the ROS 2 fusion node adds on top of the pipeline, and the rate it delivers.

For each resolution, three processes run on a private ROS domain, as on a robot: a
publisher of visible + thermal pairs at ``--rate`` Hz (stamped with the wall clock), the node
(``lutfuse node``), and a recorder of ``fused/image`` and ``/diagnostics``. Printed per
resolution:

- delivered: measured pairs that came out of the node, and the output rate;
- pipeline p50/p99: ``FusionPipeline.fuse_timed`` inside the node;
- added p50/p99: the node's latency on top of the pipeline, per image: from the arrival of
  the pair's later image to the return of ``publish``, minus the pipeline time (conversions,
  synchronisation, queue wait, publication); ``queue`` and ``handling`` split it into the wait
  for a fusion in progress (only when the input outpaces the pipeline) and the rest;
- end-to-end p50/p99: camera ``publish`` to recorder callback (both DDS hops included).

The node reports percentiles per diagnostics window: p50 is the median of the window
medians, p99 the largest window p99 (an upper bound). Target: added p99 <= 5 ms while the
pipeline keeps up with the input.

Usage::

    python benchmarks/bench_node.py [--sizes 640x480 1280x720] [--rate 30] [--seconds 10]
        [--artifact lutfuse-mini] [--backend torch] [--threads 1] [--transport default]
        [--json out.json [--force]]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lutfuse_ros.atomic_files import atomic_output  # noqa: E402
from lutfuse_ros.ros.transport import USER_TRANSPORT_VARIABLES  # noqa: E402

KINDS = ("pipeline", "overhead", "queue", "handling")


def run_size(size: tuple[int, int], args: argparse.Namespace, domain_id: int) -> dict:
    """Run publisher -> node -> recorder once; return the figures of one resolution."""
    env = {k: v for k, v in os.environ.items() if k not in USER_TRANSPORT_VARIABLES}
    env = dict(env, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    namespace = f"/lutfuse_bench_{os.getpid()}_{size[0]}x{size[1]}"
    ros_args = ["--ros-args", "-r", f"__ns:={namespace}"]
    count = int(round(args.rate * args.seconds))
    with tempfile.TemporaryDirectory(prefix="lutfuse_bench_") as folder:
        tmp = Path(folder)
        params = tmp / "params.yaml"
        params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
            "artifact": args.artifact, "backend": args.backend, "backend_threads": args.threads,
            "diagnostics": {"period": 1.0}}}}))
        no_profile = ["--no-fastdds-profile"] if args.transport == "default" else []
        traffic = [sys.executable, "-m", "lutfuse_testing.camera_traffic", *no_profile, "--timeout",
                   str(args.seconds + 120)]
        commands = {
            "node": [sys.executable, "-m", "lutfuse_ros.cli.main", "node", *no_profile,
                     *ros_args,
                     "--params-file", str(REPO / "config" / "fuse.yaml"), "--params-file",
                     str(params)],
            "recorder": traffic + ["record", "--diagnostics", "--ready-file", str(tmp / "ready"),
                                   "--done-file", str(tmp / "done"), "--out",
                                   str(tmp / "rec.npz"), *ros_args],
            "publisher": traffic + ["publish", "--size", str(size[0]), str(size[1]), "--rate",
                                    str(args.rate), "--count", str(count), "--distinct", "8",
                                    "--ready-file", str(tmp / "ready"), "--done-file",
                                    str(tmp / "done"), "--log", str(tmp / "pub.json"),
                                    "--linger-until", str(tmp / "rec.npz"), *ros_args],
        }
        processes = {}
        try:
            for name, command in commands.items():
                log = open(tmp / f"{name}.log", "wb")
                processes[name] = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                                   stderr=subprocess.STDOUT)
                log.close()
            for name in ("publisher", "recorder"):
                if processes[name].wait(args.seconds + 180) != 0:
                    raise RuntimeError(f"{name} failed:\n{(tmp / f'{name}.log').read_text()}\n"
                                       f"node:\n{(tmp / 'node.log').read_text()}")
            published = json.loads((tmp / "pub.json").read_text())["pairs"]
            with np.load(tmp / "rec.npz") as data:
                stamps, received = data["stamp_ns"], data["receive_ns"]
                diagnostics = json.loads(str(data["diagnostics_json"]))
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
    return summarise(size, published, stamps, received,
                     [s for s in diagnostics if s["name"].startswith(f"{namespace}/")])


def summarise(size, published, stamps, received, statuses) -> dict:
    """Figures of one run (milliseconds, Hz)."""
    sent = {pair["stamp_ns"] for pair in published}
    measured = np.isin(stamps, list(sent))
    seconds = (published[-1]["stamp_ns"] - published[0]["stamp_ns"]) / 1e9
    end_to_end = (received[measured] - stamps[measured]) / 1e6
    windows = [s["values"] for s in statuses
               if s["values"]["pipeline latency p50 (ms)"] != "n/a"]
    result = {"size": f"{size[0]}x{size[1]}", "pairs": len(published),
              "delivered": int(measured.sum()),
              "output_rate_hz": float(measured.sum() / seconds) if seconds > 0 else 0.0,
              "end_to_end_ms": [float(np.percentile(end_to_end, q)) if len(end_to_end)
                                else float("nan") for q in (50, 99)]}
    for kind in KINDS:
        p50 = [float(w[f"{kind} latency p50 (ms)"]) for w in windows]
        p99 = [float(w[f"{kind} latency p99 (ms)"]) for w in windows]
        result[f"{kind}_ms"] = [float(np.median(p50)) if p50 else float("nan"),
                                max(p99) if p99 else float("nan")]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--artifact", default="lutfuse-mini")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--threads", type=int, default=0, help="backend threads (0: default)")
    parser.add_argument("--transport", choices=("shipped", "default"), default="shipped",
                        help="Fast DDS transports of all three processes: the shipped profile "
                             "(what the node applies) or Fast DDS defaults")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--force", action="store_true", help="overwrite --json")
    args = parser.parse_args()
    if args.json and args.json.exists() and not args.force:
        parser.error(f"{args.json} exists; pass --force to overwrite it")
    print(f"{args.artifact} on {args.backend}, {args.transport} Fast DDS transports, "
          f"{args.rate:g} Hz for {args.seconds:g} s, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = (f"{'size':>9} {'delivered':>11} {'rate Hz':>8} {'pipeline p50/p99':>17} "
              f"{'added p50/p99':>15} {'queue p50/p99':>15} {'handling p50/p99':>17} "
              f"{'end-to-end p50/p99':>19}")
    print(header)
    results = []
    for index, text in enumerate(args.sizes):
        width, height = (int(v) for v in text.lower().split("x"))
        result = run_size((width, height), args, 1 + (os.getpid() * 3 + index) % 100)
        results.append(result)
        pair = "{0[0]:7.1f}/{0[1]:<7.1f}".format
        print(f"{result['size']:>9} {result['delivered']:>5}/{result['pairs']:<5} "
              f"{result['output_rate_hz']:8.1f} {pair(result['pipeline_ms']):>17} "
              f"{pair(result['overhead_ms']):>15} {pair(result['queue_ms']):>15} "
              f"{pair(result['handling_ms']):>17} {pair(result['end_to_end_ms']):>19}",
              flush=True)
    if args.json:
        with atomic_output(args.json, overwrite=args.force) as temporary:
            temporary.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
