"""The fusion step in use, swappable while the worker thread fuses with it.

The worker fuses inside :meth:`StepSlot.use`; :meth:`StepSlot.swap` replaces the reference
at once, without waiting for the pair in progress, so a pair is fused entirely by the old or
entirely by the new model, and the old one is retired (closed) only once no pair uses it any
more.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from lutfuse_ros.stream.fusion_step import FusionStep


class StepSlot:
    """The current fusion step, swappable while a worker thread uses it.

    A swap never waits for the pair in progress: it installs the new step at once (the next
    pair uses it) and retires the previous one (``retire(previous)``, for example closing its
    backend) as soon as no pair uses that step's backend any more, on the thread that
    finishes the last such pair. Steps built by a live parameter change share their
    predecessor's backend, so in-use counts are kept per backend.

    Args:
        step: the initial step.
    """

    def __init__(self, step: FusionStep) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._users: dict[int, int] = {}  # id(backend) -> pairs in progress with it
        self._retiring: dict[int, tuple[FusionStep, Callable[[FusionStep], None]]] = {}

    @property
    def step(self) -> FusionStep:
        """The current fusion step, to read its settings (fuse through :meth:`use`)."""
        return self._step

    @contextmanager
    def use(self) -> Iterator[FusionStep]:
        """Hold the current step for one pair; a swap meanwhile retires it after the block."""
        with self._lock:
            step = self._step
            key = id(step.pipeline.backend)
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield step
        finally:
            with self._lock:
                self._users[key] -= 1
                retiring = None
                if self._users[key] == 0:
                    del self._users[key]
                    retiring = self._retiring.pop(key, None)
            if retiring is not None:
                retiring[1](retiring[0])

    def swap(self, step: FusionStep,
             retire: Callable[[FusionStep], None] | None = None) -> FusionStep:
        """Install ``step`` now and retire the previous step once no pair uses its backend.

        ``retire`` is not called when ``step`` runs on the previous step's backend.

        Returns:
            The previous step (possibly still in use by the pair in progress).
        """
        with self._lock:
            previous, self._step = self._step, step
            key = id(previous.pipeline.backend)
            if retire is None or key == id(step.pipeline.backend):
                return previous
            in_use = self._users.get(key, 0) > 0
            if in_use:
                self._retiring[key] = (previous, retire)
        if not in_use:
            retire(previous)
        return previous
