"""The real fusion node with one more backend registered, ``faulty``, for the fault tests.

``python faulty_backend_node.py CONTROL_FILE --ros-args ...`` runs
:func:`lutfuse_ros.ros.node.main` in a process whose backend registry also holds
``faulty`` -> :class:`FaultyBackend`. That backend runs the model with the torch backend and,
while ``CONTROL_FILE`` exists, injects the fault the file names: ``raise`` (the backend raises
``RuntimeError``, as a runtime that lost its device would) or ``nan`` (the model output is NaN,
which the pipeline's own non-finite check must reject). Removing the file ends the fault, so a
test can check that the node recovers by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from lutfuse_ros.backends.base import InferenceBackend

CONTROL_VARIABLE = "LUTFUSE_TEST_FAULT_FILE"
FAULTS = ("raise", "nan")


class FaultyBackend(InferenceBackend):
    """The torch backend with faults injected on demand (see the module docstring).

    Args:
        artifact: the model.
        device: ``cpu``.
        **options: torch backend options.
    """

    name = "faulty"

    def __init__(self, artifact, device: str = "cpu", **options) -> None:
        from lutfuse_ros.backends.torch_backend import TorchBackend

        super().__init__(artifact, device, **options)
        self._inner = TorchBackend(artifact, device, **options)
        self._control = Path(os.environ[CONTROL_VARIABLE])

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """The torch backend's result, unless the control file asks for a fault."""
        try:
            fault = self._control.read_text().strip()
        except FileNotFoundError:
            fault = ""
        if fault == "raise":
            raise RuntimeError("injected backend fault (runtime lost its device)")
        fused = self._inner.infer(visible_rgb, infrared)
        return np.full_like(fused, np.nan) if fault == "nan" else fused

    def close(self) -> None:
        self._inner.close()


def main(argv: list[str]) -> int:
    """Register ``faulty`` and run the node; ``argv[1]`` is the control file."""
    from lutfuse_ros.backends import BACKENDS
    from lutfuse_ros.ros.node import main as node_main

    os.environ[CONTROL_VARIABLE] = argv[1]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    BACKENDS["faulty"] = f"{Path(__file__).stem}:FaultyBackend"
    return node_main([argv[0], *argv[2:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
