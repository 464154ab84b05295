"""Run a row-local image function on horizontal bands, on every core.

A function is *row-local with halo h* when output row ``y`` depends only on input rows
``y - h .. y + h`` (two stacked 3x3 convolutions: ``h = 2``) and the function treats the
first and last rows of whatever block it gets as the image border (OpenCV's border modes
do). Cutting the image into bands, each read with ``h`` extra rows on both sides and cropped
back, then gives exactly the whole-image result, band seams included.

Two things make bands faster than one whole-image call on a small CPU:

* **cores**: OpenCV's ``filter2D`` and NumPy's element-wise functions run on one core;
  they release the GIL, so bands in a thread pool use every core (the torch backend's
  ``threads``);
* **cache**: a band of about :data:`BAND_PIXELS` pixels keeps its intermediate planes in
  the core's cache instead of streaming whole frames through memory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

#: Pixels per band: about one band per core at 640x480, four at 1280x720 (measured on a
#: 2-core AMD EPYC: larger bands beat cache-sized ones, whose per-call overhead dominates).
BAND_PIXELS = 240_000
#: Frames smaller than this run in the calling thread (a thread hand-off costs more).
MIN_PARALLEL_PIXELS = 40_000

BandFunction = Callable[..., np.ndarray]


class RowBands:
    """Runs a row-local function band by band, in up to ``workers`` threads.

    Args:
        halo: rows of context the function needs on each side of an output row.
        workers: threads (1 runs every band in the calling thread).
        band_pixels: target pixels per band.

    Raises:
        ValueError: ``halo < 0``, ``workers < 1`` or ``band_pixels < 1``.
    """

    def __init__(self, halo: int, workers: int = 1, band_pixels: int = BAND_PIXELS) -> None:
        if halo < 0 or workers < 1 or band_pixels < 1:
            raise ValueError(f"need halo >= 0, workers >= 1, band_pixels >= 1; got {halo}, "
                             f"{workers}, {band_pixels}")
        self.halo = halo
        self.workers = workers
        self.band_pixels = band_pixels
        self._pool: ThreadPoolExecutor | None = None

    def bands(self, height: int, width: int) -> list[tuple[int, int]]:
        """Output row ranges ``[(top, bottom), ...]`` covering ``0 .. height``.

        Bands of about ``band_pixels`` pixels (at least ``2 * halo + 1`` rows each); when
        the frame is large enough to share out, a multiple of ``workers`` bands, so that
        every thread gets the same work.
        """
        minimum_rows = max(1, 2 * self.halo + 1)
        count = -(-height * width // self.band_pixels)
        if self.workers > 1 and height * width >= MIN_PARALLEL_PIXELS:
            count = -(-count // self.workers) * self.workers
        count = max(1, min(count, height // minimum_rows))
        edges = np.linspace(0, height, count + 1).round().astype(int)
        return [(int(top), int(bottom)) for top, bottom in zip(edges[:-1], edges[1:])]

    def run(self, function: BandFunction, planes: Sequence[np.ndarray]) -> np.ndarray:
        """``function(*planes)`` computed band by band.

        Args:
            function: row-local with halo ``self.halo``; takes row slices of ``planes`` and
                returns a 2-D float array with as many rows.
            planes: arrays with the same first two dimensions ``(H, W, ...)``.

        Returns:
            ``(H, W, ...)`` array equal to ``function(*planes)`` (its shape and dtype).
        """
        height, width = planes[0].shape[:2]
        bands = self.bands(height, width)
        if len(bands) == 1:
            return function(*planes)
        out: np.ndarray | None = None

        def one_band(rows: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray]:
            top, bottom = rows
            first, last = max(0, top - self.halo), min(height, bottom + self.halo)
            block = function(*(plane[first:last] for plane in planes))
            return rows, block[top - first:bottom - first]

        if self.workers == 1 or height * width < MIN_PARALLEL_PIXELS:
            results = map(one_band, bands)
        else:
            results = self._executor().map(one_band, bands)
        for (top, bottom), block in results:
            if out is None:
                out = np.empty((height,) + block.shape[1:], block.dtype)
            out[top:bottom] = block
        return out

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="lutfuse-band")
        return self._pool

    def close(self) -> None:
        """Stop the worker threads (a later :meth:`run` starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
