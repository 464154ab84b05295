"""Waiting for a state instead of sleeping for a fixed time."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.05,
             what: Any = "condition") -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` s.

    Args:
        condition: called until it returns something true.
        timeout: seconds before giving up.
        interval: seconds between polls.
        what: what is waited for, text or a callable giving it (called only on failure).

    Raises:
        AssertionError: ``timeout`` passed (the message names ``what``).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(interval)
