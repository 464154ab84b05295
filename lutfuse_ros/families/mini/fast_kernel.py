"""Fast CPU inference of the MMDRFuse mini-model (:class:`~.model.MiniFusionNet`).

Float32 throughout (the model is tiny: bf16 would buy nothing and cost precision). With two,
four and one channels, library convolutions waste most of their vector lanes (oneDNN pads the
channel axis to 16, measured 3-4x slower than this), so every (input, output) channel pair
is one OpenCV ``filter2D`` on a float32 plane, vectorised along the image rows, with OpenCV's
``BORDER_REFLECT_101`` being exactly ``nn.ReflectionPad2d(1)``. Biases ride on ``filter2D``'s
``delta``; ReLU and tanh run in place in NumPy. Frames run in horizontal bands on every core
(:class:`~.row_bands.RowBands`, two halo rows: two 3x3 layers), bit-identical to one call.
A frame-level term (architecture ``frame_level``) is computed once per frame from the two
input means and folded into those biases. A model whose off-centre taps are all zero (trained
with ``mini.centre_taps_only``, as the shipped one) is a per-pixel function: it runs as
per-pixel weighted sums (``cv2.addWeighted`` / ``cv2.scaleAdd``) instead of filters, the same
function to float32 rounding.
"""

from __future__ import annotations

import functools
import threading

import cv2
import numpy as np
import torch

from lutfuse_ros.backends.cpu_kernels.row_bands import RowBands
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.families.mini.model import MiniFusionNet

_UNIT_LEVELS = (np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)).reshape(1, 256)
_UNIT_LEVELS.flags.writeable = False
_REFLECT = cv2.BORDER_REFLECT_101
#: Output rows depend on input rows up to this far away (two 3x3 layers).
_HALO = 2


class FastMini:
    """A mini-model prepared for fast CPU inference (float32; ``dtype`` is accepted and ignored).

    Args:
        model: the reference module (its weights are copied).
        dtype: unused; the mini-model always runs in float32.
        workers: threads the bands run on (None: PyTorch's intra-op thread count, which the
            torch backend's ``threads`` sets).
    """

    def __init__(self, model: MiniFusionNet, dtype: torch.dtype = torch.float32,
                 workers: int | None = None) -> None:
        del dtype
        self.bands = RowBands(_HALO, workers or torch.get_num_threads())
        self._thread_scratch = threading.local()
        self.precision = "fp32"
        self.quantise_input = bool(model.quantise_input)
        #: the output activation: tanh (official) or none (architecture ``output: linear``)
        self.linear_output = getattr(model, "output", "tanh") == "linear"
        self._kernels1 = model.conv1[1].weight.detach().float().numpy().copy()  # (hidden, 2, 3, 3)
        self._biases1 = [float(b) for b in model.conv1[1].bias.detach()]
        self._kernels2 = model.conv2[1].weight.detach().float().numpy()[0].copy()  # (hidden, 3, 3)
        self._bias2 = float(model.conv2[1].bias.detach()[0])
        off_centre = np.ones((3, 3), bool)
        off_centre[1, 1] = False
        #: every 3x3 kernel is zero outside its centre tap: a per-pixel model
        self.per_pixel = not (self._kernels1[..., off_centre].any()
                              or self._kernels2[..., off_centre].any())
        #: ``(hidden + 1, 2)`` float64 frame-level weights, or None
        self._level = (model.level.weight.detach().double().numpy().copy()
                       if getattr(model, "frame_level", False) else None)

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """Fuse one uint8 frame; returns ``(H, W)`` float32 raw output, as the module's."""
        block = self._run_block
        if self._level is not None:
            pixels = frame.thermal.size * 255.0
            if self.quantise_input:  # cv2 rounds half to even, as np.round does
                luma_sum = cv2.sumElems(cv2.multiply(frame.luma, 255.0, dtype=cv2.CV_8U))[0]
                luma_mean = luma_sum / pixels
            else:
                luma_mean = float(frame.luma.mean(dtype=np.float64))
            block = self._with_frame_level(cv2.sumElems(frame.thermal)[0] / pixels, luma_mean)
        return self.bands.run(block, (frame.thermal, frame.luma))

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """Fuse float inputs: ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)`` infrared on [0, 1]."""
        from lutfuse_ros.families.features import rgb_to_luma

        luma = rgb_to_luma(torch.from_numpy(visible_rgb))[0, 0].numpy()
        infrared = np.ascontiguousarray(infrared[0, 0], dtype=np.float32)
        block = self._run_block
        if self._level is not None:
            luma_levels = np.round(luma * np.float32(255.0)) / 255.0 if self.quantise_input \
                else luma
            block = self._with_frame_level(float(infrared.mean(dtype=np.float64)),
                                           float(luma_levels.mean(dtype=np.float64)))
        return self.bands.run(block, (infrared, luma))

    def _with_frame_level(self, infrared_mean: float, luma_mean: float):
        """The block function with this frame's level offsets added to the biases."""
        offsets = self._level @ np.array([infrared_mean, luma_mean])
        biases1 = [bias + float(offset) for bias, offset in zip(self._biases1, offsets)]
        return functools.partial(self._run_block, biases1=biases1,
                                 bias2=self._bias2 + float(offsets[-1]))

    def _run_block(self, infrared: np.ndarray, luma: np.ndarray,
                   biases1: list[float] | None = None, bias2: float | None = None,
                   ) -> np.ndarray:
        """``(h, W)`` float32 output of a block of full-width rows.

        Args:
            infrared: ``(h, W)`` uint8 levels or float32 on [0, 1].
            luma: ``(h, W)`` float32 on [0, 1] (rounded to 8-bit levels here when the
                model quantises its input).
            biases1: the first layer's biases for this frame (None: the trained ones).
            bias2: the second layer's bias for this frame (None: the trained one).

        The block's first and last rows are treated as the image border (reflection).
        """
        scratch = self._scratch(luma.shape)
        if infrared.dtype == np.uint8:
            infrared = cv2.LUT(infrared, _UNIT_LEVELS, dst=scratch.infrared)
        if self.quantise_input:
            luma = np.multiply(luma, np.float32(255.0), out=scratch.luma)
            np.round(luma, out=luma)
            luma /= np.float32(255.0)
        hidden, term, out = scratch.hidden, scratch.term, scratch.out
        biases1 = self._biases1 if biases1 is None else biases1
        bias2 = self._bias2 if bias2 is None else bias2
        if self.per_pixel:
            out.fill(bias2)
            for kernels, bias, weight2 in zip(self._kernels1, biases1, self._kernels2):
                cv2.addWeighted(infrared, float(kernels[0, 1, 1]), luma, float(kernels[1, 1, 1]),
                                bias, dst=hidden)
                cv2.max(hidden, 0.0, dst=hidden)
                cv2.scaleAdd(hidden, float(weight2[1, 1]), out, dst=out)
            return self._activate(out)
        first = True
        for kernels, bias, weight2 in zip(self._kernels1, biases1, self._kernels2):
            # the official channel order: infrared first
            cv2.filter2D(infrared, -1, kernels[0], dst=hidden, delta=bias, borderType=_REFLECT)
            cv2.filter2D(luma, -1, kernels[1], dst=term, borderType=_REFLECT)
            cv2.add(hidden, term, dst=hidden)
            cv2.max(hidden, 0.0, dst=hidden)
            if first:
                cv2.filter2D(hidden, -1, weight2, dst=out, delta=bias2, borderType=_REFLECT)
                first = False
            else:
                cv2.filter2D(hidden, -1, weight2, dst=term, borderType=_REFLECT)
                cv2.add(out, term, dst=out)
        return self._activate(out)

    def _activate(self, out: np.ndarray) -> np.ndarray:
        """The output activation (tanh or none) as a new array: the scratch planes are reused."""
        return out.copy() if self.linear_output else np.tanh(out)

    def _scratch(self, shape: tuple[int, int]) -> "_Scratch":
        """This thread's working planes for a block of ``shape`` (reused across frames)."""
        scratch = getattr(self._thread_scratch, "planes", None)
        if scratch is None or scratch.shape != shape:
            scratch = self._thread_scratch.planes = _Scratch(shape)
        return scratch

    def close(self) -> None:
        """Stop the band threads."""
        self.bands.close()


class _Scratch:
    """Float32 working planes of one block, reused across frames.

    Fresh planes every frame would be fresh memory for the OS to fault in and zero.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.infrared, self.luma, self.hidden, self.term, self.out = (
            np.empty(shape, np.float32) for _ in range(5))
