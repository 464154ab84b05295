"""The one process supervisor of the tests and benchmarks: ROS processes on a private graph.

A :class:`ProcessGroup` owns the child processes of one test or benchmark run: its own
``ROS_DOMAIN_ID`` and namespace, a work folder with one log per process, and an orderly stop
(an optional stop file, then SIGINT, then SIGTERM, then SIGKILL). The children are started in
their own session and get SIGTERM if the supervising process dies (``PR_SET_PDEATHSIG``, the
same request the product's replay makes for its node). The fusion node is started with the
product's own command line (:func:`lutfuse_ros.bag.node_process.node_command`, the ``lutfuse
node`` entry point, as replay starts it). Fast DDS shared-memory files that a SIGKILLed child
left in ``/dev/shm`` are removed when the group closes, if they were created during the run
and no live owner holds them (:mod:`lutfuse_testing.shm_segments`).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from lutfuse_ros.bag.node_process import node_command, parent_death_signal
from lutfuse_testing.shm_segments import remove_stale_segments, segment_locks

REPO = Path(__file__).resolve().parents[1]
#: The node's defaults, passed first as ``lutfuse node`` users pass them.
DEFAULTS_FILE = REPO / "config" / "fuse.yaml"


class ProcessGroup:
    """Child processes of one run on a private ROS domain and namespace.

    Args:
        work: folder for ``<name>.log`` of every process (and whatever the run writes).
        domain_id: ``ROS_DOMAIN_ID`` of every child.
        namespace: ROS namespace of every child (``__ns`` remapping).
    """

    def __init__(self, work: Path, domain_id: int, namespace: str) -> None:
        self.work, self.domain_id, self.namespace = Path(work), domain_id, namespace
        self.processes: dict[str, subprocess.Popen] = {}
        #: exit code of every stopped process, by name.
        self.exit_codes: dict[str, int] = {}
        #: processes that had to be SIGKILLed.
        self.killed: list[str] = []
        self._segments_before = segment_locks()

    @property
    def env(self) -> dict[str, str]:
        """The children's environment: this one, the domain, the checkout on ``PYTHONPATH``.

        Also unbuffered output and no colours in logs; the checkout is on the path because the
        tooling is not installed with the package.
        """
        env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain_id), PYTHONUNBUFFERED="1",
                   RCUTILS_COLORIZED_OUTPUT="0")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def ros_args(self) -> list[str]:
        """``--ros-args`` putting a node into this group's namespace."""
        return ["--ros-args", "-r", f"__ns:={self.namespace}"]

    def node_command(self, *params_files: Path, extra: tuple[str, ...] = ()) -> list[str]:
        """``lutfuse node`` in this namespace with ``config/fuse.yaml``, then ``params_files``.

        Args:
            params_files: more parameter files, applied in order after the defaults.
            extra: further ``--ros-args`` arguments (``-p``, ``-r`` ...).
        """
        arguments = ["-r", f"__ns:={self.namespace}", "--params-file", str(DEFAULTS_FILE)]
        for path in params_files:
            arguments += ["--params-file", str(path)]
        return node_command([*arguments, *extra])

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None,
              ) -> subprocess.Popen:
        """Start ``command`` with its output in ``<work>/<name>.log``.

        Args:
            name: the process's name in this group (unique).
            command: the command line.
            env: its environment (default :attr:`env`).
        """
        with open(self.work / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=self.env if env is None else env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=parent_death_signal())  # noqa: PLW1509 (no threads started here)
        self.processes[name] = process
        return process

    def log(self, name: str, tail: int | None = None) -> str:
        """Output of a process so far (its last ``tail`` characters when given)."""
        path = self.work / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if tail is None else text[-tail:]

    def exited(self) -> dict[str, int]:
        """Exit codes of the processes that are no longer running, by name."""
        return {name: code for name, process in self.processes.items()
                if (code := process.poll()) is not None}

    def stop(self, name: str, timeout: float = 15.0, stop_file: Path | None = None,
             ) -> int | None:
        """Stop one process: touch ``stop_file`` and wait, then SIGINT, SIGTERM, SIGKILL.

        Args:
            name: the process; an unknown name is ignored (returns None).
            timeout: seconds to wait after the stop file and after SIGINT.
            stop_file: a file the process watches to end by itself, or None.

        Returns:
            Its exit code.
        """
        process = self.processes.get(name)
        if process is None:
            return None
        steps: list[tuple[signal.Signals | None, float]] = [
            (signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)]
        if stop_file is not None:
            stop_file.touch()
            steps.insert(0, (None, timeout))
        for sig, wait_s in steps:
            if process.poll() is not None:
                break
            if sig is not None:
                if sig == signal.SIGKILL:
                    self.killed.append(name)
                try:
                    process.send_signal(sig)
                except ProcessLookupError:
                    break
            try:
                process.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        self.exit_codes[name] = process.wait()
        return self.exit_codes[name]

    def close(self) -> None:
        """Stop every process still running (newest first), then clean up after SIGKILLs."""
        for name in reversed(list(self.processes)):
            if name not in self.exit_codes:
                self.stop(name)
        if self.killed:
            remove_stale_segments(self._segments_before)
