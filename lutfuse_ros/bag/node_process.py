"""The fusion node as a child process of ``lutfuse replay``, on a private ``ROS_DOMAIN_ID``.

The child runs ``python -m lutfuse_ros.cli.main node --ros-args ...`` (the ``lutfuse node``
entry point, which applies the package's Fast DDS profile itself), in its own session so a
terminal's Ctrl-C reaches only the replay, which then stops the child in order: SIGINT, then
SIGTERM, then SIGKILL. On Linux the child also gets SIGTERM if the replay dies without
cleaning up. Its stdout and stderr go to a log file (or an anonymous temporary file) whose
tail is quoted when it fails.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import lutfuse_ros
from lutfuse_ros.errors import ConfigError

#: ``ROS_DOMAIN_ID`` values picked for private runs (0-101 are safe on every platform).
PRIVATE_DOMAIN_RANGE = (1, 101)
_PR_SET_PDEATHSIG = 1


def choose_domain_id(requested: int | None, environ: Mapping[str, str] = os.environ) -> int:
    """``requested``, or a random domain in :data:`PRIVATE_DOMAIN_RANGE` unlike the current one.

    Raises:
        ConfigError: ``requested`` is outside 0..232.
    """
    if requested is not None:
        if not 0 <= requested <= 232:
            raise ConfigError(f"ROS_DOMAIN_ID must be in 0..232, got {requested}")
        return requested
    current = environ.get("ROS_DOMAIN_ID", "0")
    low, high = PRIVATE_DOMAIN_RANGE
    choices = [d for d in range(low, high + 1) if str(d) != current]
    return random.SystemRandom().choice(choices)


def node_command(ros_args: Sequence[str]) -> list[str]:
    """The command line starting the fusion node with ``--ros-args`` ``ros_args``."""
    return [sys.executable, "-m", "lutfuse_ros.cli.main", "node", "--ros-args", *ros_args]


def parent_death_signal() -> object:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent dies (else None)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_death_signal


class NodeProcess:
    """A running fusion node child process.

    Args:
        ros_args: arguments after ``--ros-args`` (params file, ``-p``, ``-r`` rules).
        domain_id: its ``ROS_DOMAIN_ID``.
        environ: environment to start from (the caller's, before it changed its own).
        log_path: file for the child's output; ``None`` uses an anonymous temporary file.
    """

    def __init__(self, ros_args: Sequence[str], domain_id: int, environ: Mapping[str, str],
                 log_path: Path | None = None) -> None:
        self.command = node_command(ros_args)
        self.log_path = log_path
        package_root = str(Path(lutfuse_ros.__file__).resolve().parents[1])
        python_path = os.pathsep.join(p for p in (package_root, environ.get("PYTHONPATH")) if p)
        env = {**environ, "ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": python_path}
        self._log: IO[bytes] = (open(log_path, "w+b") if log_path is not None  # noqa: SIM115
                                else tempfile.TemporaryFile())
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=parent_death_signal())  # noqa: PLW1509 (no threads yet)
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        """Process id of the child."""
        return self.process.pid

    def log_tail(self, limit: int = 3000) -> str:
        """The last ``limit`` characters of the child's output."""
        if self._log.closed:
            if self.log_path is None or not self.log_path.exists():
                return ""
            return self.log_path.read_text(errors="replace")[-limit:]
        self._log.flush()
        position = self._log.tell()
        self._log.seek(max(0, position - limit))
        text = self._log.read().decode(errors="replace")
        self._log.seek(position)
        return text

    def exit_message(self) -> str | None:
        """``None`` while running; otherwise why the node is gone, with its output's tail."""
        code = self.process.poll()
        if code is None:
            return None
        where = f" (full log: {self.log_path})" if self.log_path is not None else ""
        return (f"the fusion node exited with code {code} "
                f"({' '.join(self.command[1:4])} ...); its output ends with{where}:\n"
                f"{self.log_tail()}")

    def stop(self, grace_s: float = 10.0) -> int | None:
        """Stop the child: SIGINT, then SIGTERM, then SIGKILL; returns its exit code.

        Idempotent; the log file is closed afterwards.
        """
        try:
            for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0),
                                (signal.SIGKILL, 5.0)):
                if self.process.poll() is not None:
                    break
                try:
                    self.process.send_signal(sig)
                    self.process.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
            return self.process.poll()
        finally:
            if not self._log.closed:
                self._log.close()
