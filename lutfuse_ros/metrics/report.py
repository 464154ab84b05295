"""Folder-level fusion evaluation: per-image metrics, means, baselines, Markdown and JSON.

A folder of fused images is matched with the infrared and visible source folders by file stem
(``x.png`` in the fused folder pairs with ``x.jpg`` in each source folder). Pairs that cannot
be evaluated (a file missing, unreadable, of another size) are skipped and listed with the
reason; they never stop the evaluation of the others.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics.fusion_metrics import METRIC_NAMES, evaluate_pair, read_gray

#: file suffixes (lower case) taken as images when scanning a folder.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
#: labels of the two trivial baselines, as they appear in reports.
AVERAGE_LABEL = "average (ir+vi)/2"
MAX_LABEL = "max(ir, vi)"
#: decimals printed per metric in the Markdown table.
_DECIMALS = {"SD": 2, "SF": 2, "PSNR": 2}
#: conventions recorded in the JSON output.
PROTOCOL = {
    "gray_read": "cv2.imread BGR uint8 -> float32 -> COLOR_BGR2GRAY -> round",
    "argument_order": "metric(fused, ir, vi)",
    "SSIM": "ssim(F, ir) + ssim(F, vi), scikit-image defaults, data_range=2.0",
    "VIF": "vifp(ir, F) + vifp(vi, F), 4-scale pixel-domain VIF",
    "MI": "MI(F, ir) + MI(F, vi) in nats",
    "EN": "Shannon entropy in bits of the 256-bin histogram",
    "CC": "(corr(ir, F) + corr(vi, F)) / 2",
    "PSNR": "10 log10(255^2 / MSE), MSE = (mse(F, ir) + mse(F, vi)) / 2",
}


@dataclass
class EvaluationReport:
    """Metrics of one method over a set of image pairs.

    Attributes:
        fused_dir: Folder the fused images came from (or a description for baselines).
        rows: Per-image metrics, ``{stem: {metric: value}}`` in evaluation order.
        skipped: Pairs not evaluated, ``{stem: reason}``.
    """

    fused_dir: str
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def means(self) -> dict[str, float]:
        """Mean of every metric over the evaluated images (NaN for all when there are none).

        A NaN or infinite per-image value (e.g. PSNR of an exact copy) propagates to the mean.
        """
        if not self.rows:
            return {name: float("nan") for name in METRIC_NAMES}
        return {name: float(np.mean([row[name] for row in self.rows.values()]))
                for name in METRIC_NAMES}


def index_images(folder: Path, role: str) -> dict[str, list[Path]]:
    """Map each image stem in ``folder`` to its files (several if suffixes differ)."""
    if not folder.is_dir():
        raise InputError(f"{role} folder {folder} does not exist or is not a folder")
    index: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(entry.stem, []).append(entry)
    return index


def pick_image(index: dict[str, list[Path]], stem: str, role: str, folder: Path) -> Path:
    """The single file for ``stem``; raises InputError if it is missing or ambiguous."""
    candidates = index.get(stem, [])
    if not candidates:
        raise InputError(f"no {role} image named {stem}.* in {folder}")
    if len(candidates) > 1:
        listed = ", ".join(path.name for path in candidates)
        raise InputError(f"several {role} images for {stem} in {folder}: {listed}")
    return candidates[0]


def _progress(items: list[str], description: str, enabled: bool) -> Iterable[str]:
    """Wrap ``items`` in a tqdm bar on stderr when enabled and tqdm is installed."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=description, unit="image", file=sys.stderr, leave=False)


def _source_pairs(ir_dir: Path, vi_dir: Path, stems: list[str], description: str,
                  progress: bool, skipped: dict[str, str]
                  ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(stem, ir, vi)`` gray images; stems that fail go to ``skipped``."""
    ir_index = index_images(ir_dir, "ir")
    vi_index = index_images(vi_dir, "vi")
    for stem in _progress(stems, description, progress):
        try:
            ir = read_gray(pick_image(ir_index, stem, "ir", ir_dir))
            vi = read_gray(pick_image(vi_index, stem, "vi", vi_dir))
        except InputError as error:
            skipped[stem] = str(error)
            continue
        yield stem, ir, vi


def evaluate_folder(fused_dir: str | os.PathLike[str], ir_dir: str | os.PathLike[str],
                    vi_dir: str | os.PathLike[str], names: Iterable[str] | None = None,
                    progress: bool = True) -> EvaluationReport:
    """Evaluate every fused image of a folder against its infrared and visible sources.

    Args:
        fused_dir: Folder of fused images (any OpenCV-readable format; read as gray).
        ir_dir: Folder of infrared source images.
        vi_dir: Folder of visible source images.
        names: File stems to evaluate; default: every image stem in ``fused_dir``, sorted.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        The per-image metrics and the skipped pairs with their reasons.

    Raises:
        InputError: If one of the three folders does not exist.
    """
    fused_folder, ir_folder, vi_folder = Path(fused_dir), Path(ir_dir), Path(vi_dir)
    fused_index = index_images(fused_folder, "fused")
    stems = sorted(fused_index) if names is None else list(dict.fromkeys(names))
    report = EvaluationReport(fused_dir=str(fused_folder))
    for stem, ir, vi in _source_pairs(ir_folder, vi_folder, stems, fused_folder.name,
                                      progress, report.skipped):
        try:
            fused = read_gray(pick_image(fused_index, stem, "fused", fused_folder))
            report.rows[stem] = evaluate_pair(fused, ir, vi)
        except InputError as error:
            report.skipped[stem] = str(error)
    return report


def baseline_images(ir: np.ndarray, vi: np.ndarray) -> dict[str, np.ndarray]:
    """The two trivial fusions of a gray source pair.

    * ``AVERAGE_LABEL``: ``floor((ir + vi) / 2)``, the mean truncated to an integer as an
      8-bit image file would store it (this reproduces the shared reference table);
    * ``MAX_LABEL``: the per-pixel maximum ``max(ir, vi)``.

    Args:
        ir: Infrared gray image, shape ``(H, W)``, integer values 0..255.
        vi: Visible gray image of the same shape.

    Returns:
        ``{label: fused image}`` as float64 arrays of shape ``(H, W)``.

    Raises:
        InputError: If the shapes differ.
    """
    if ir.shape != vi.shape:
        raise InputError(f"ir and vi must have the same shape, got {ir.shape} and {vi.shape}")
    ir64, vi64 = np.asarray(ir, np.float64), np.asarray(vi, np.float64)
    return {AVERAGE_LABEL: np.floor((ir64 + vi64) / 2.0), MAX_LABEL: np.maximum(ir64, vi64)}


def evaluate_baselines(ir_dir: str | os.PathLike[str], vi_dir: str | os.PathLike[str],
                       names: Iterable[str] | None = None,
                       progress: bool = True) -> dict[str, EvaluationReport]:
    """Evaluate the average and maximum baselines (see :func:`baseline_images`) of a source set.

    Both are formed from the gray sources read with the protocol's reader, so they need no
    image files of their own.

    Args:
        ir_dir: Folder of infrared source images.
        vi_dir: Folder of visible source images.
        names: File stems to evaluate; default: stems present in both folders, sorted.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        ``{AVERAGE_LABEL: report, MAX_LABEL: report}``.

    Raises:
        InputError: If a source folder does not exist.
    """
    ir_folder, vi_folder = Path(ir_dir), Path(vi_dir)
    if names is None:
        common = set(index_images(ir_folder, "ir")) & set(index_images(vi_folder, "vi"))
        stems = sorted(common)
    else:
        stems = list(dict.fromkeys(names))
    origin = f"baseline from {ir_folder} and {vi_folder}"
    reports = {label: EvaluationReport(fused_dir=origin) for label in (AVERAGE_LABEL, MAX_LABEL)}
    shared_skips: dict[str, str] = {}
    for stem, ir, vi in _source_pairs(ir_folder, vi_folder, stems, "baselines", progress,
                                      shared_skips):
        try:
            fused_images = baseline_images(ir, vi)
        except InputError as error:
            shared_skips[stem] = str(error)
            continue
        for label, fused in fused_images.items():
            try:
                reports[label].rows[stem] = evaluate_pair(fused, ir, vi)
            except InputError as error:
                reports[label].skipped[stem] = str(error)
    for report in reports.values():
        report.skipped.update(shared_skips)
    return reports


def _format_value(name: str, value: float) -> str:
    """A metric mean as printed in the Markdown table."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{_DECIMALS.get(name, 3)}f}"


def to_markdown(reports: Mapping[str, EvaluationReport]) -> str:
    """A Markdown table with one row of metric means per method.

    Args:
        reports: ``{method label: report}``, printed in the mapping's order.

    Returns:
        The table (columns: method, EN SD SF AG MI SCD VIF Qabf SSIM CC PSNR), followed by a
        line giving the number of images per method and, for each method with skipped pairs,
        how many and why.
    """
    header = "| method | " + " | ".join(METRIC_NAMES) + " |"
    divider = "|---|" + "---|" * len(METRIC_NAMES)
    lines = [header, divider]
    for label, report in reports.items():
        means = report.means
        cells = " | ".join(_format_value(name, means[name]) for name in METRIC_NAMES)
        lines.append(f"| {label} | {cells} |")
    counts = ", ".join(f"{label}: {len(report.rows)}" for label, report in reports.items())
    lines += ["", f"Images evaluated: {counts}. SSIM and VIF are sums over both sources; "
              "MI in nats; EN in bits."]
    for label, report in reports.items():
        if report.skipped:
            reasons = "; ".join(f"{stem}: {why}" for stem, why in report.skipped.items())
            lines.append(f"- {label}: {len(report.skipped)} skipped ({reasons})")
    return "\n".join(lines) + "\n"


def _json_number(value: float) -> float | None:
    """A metric value for JSON: NaN and infinities become null (strict JSON has neither)."""
    return value if math.isfinite(value) else None


def to_json(reports: Mapping[str, EvaluationReport]) -> str:
    """Strict JSON of means, per-image values and skipped pairs for each method.

    Args:
        reports: ``{method label: report}``.

    Returns:
        A JSON document ``{"metrics": [...], "protocol": {...}, "methods": {label: {
        "fused_dir", "count", "means", "images": {stem: {metric: value}}, "skipped":
        {stem: reason}}}}``; NaN and infinite values are written as ``null``.
    """
    def convert(metrics: Mapping[str, float]) -> dict[str, float | None]:
        return {name: _json_number(value) for name, value in metrics.items()}

    document = {
        "metrics": list(METRIC_NAMES),
        "protocol": PROTOCOL,
        "methods": {
            label: {
                "fused_dir": report.fused_dir,
                "count": len(report.rows),
                "means": convert(report.means),
                "images": {stem: convert(row) for stem, row in report.rows.items()},
                "skipped": dict(report.skipped),
            }
            for label, report in reports.items()
        },
    }
    return json.dumps(document, indent=1, allow_nan=False) + "\n"
