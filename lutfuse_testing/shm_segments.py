"""Fast DDS shared-memory leftovers of killed processes: find them and remove them.

A process killed with SIGKILL cannot remove its Fast DDS shared-memory segment and port files
from ``/dev/shm``. Fast DDS holds an ``flock`` on ``fastdds_<id>_el`` (Fast DDS 2.x, Jazzy:
``fastrtps_<id>_el``) while a segment or port is in use, which is how ``fastdds shm clean``
recognises zombies; this module does the same for the segments created while a harness
(tests, soak runs) was running.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

SHM_DIR = Path("/dev/shm")
_SEGMENT_LOCK = re.compile(r"^(?:fastdds|fastrtps)_([0-9a-z]{16}|port\d{1,5})_el$")


def segment_locks(shm_dir: Path = SHM_DIR) -> set[str]:
    """Names of the Fast DDS lock files in ``shm_dir`` (empty where it does not exist)."""
    try:
        return {name for name in os.listdir(shm_dir) if _SEGMENT_LOCK.match(name)}
    except FileNotFoundError:
        return set()


def is_locked(path: Path) -> bool:
    """True while a live process holds the lock file ``path``."""
    try:
        with open(path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True


def remove_stale_segments(locks_before: set[str], shm_dir: Path = SHM_DIR) -> int:
    """Remove segments created since ``locks_before`` was taken whose owner is gone.

    Args:
        locks_before: :func:`segment_locks` taken before the processes were started.
        shm_dir: the shared-memory folder.

    Returns:
        How many segments (lock, segment and mutex files) were removed.
    """
    removed = 0
    for lock_name in segment_locks(shm_dir) - locks_before:
        lock = shm_dir / lock_name
        if is_locked(lock):
            continue
        stem = lock_name[:-3]
        for path in (lock, shm_dir / stem, shm_dir / f"sem.{stem}_mutex"):
            path.unlink(missing_ok=True)
        removed += 1
    return removed
