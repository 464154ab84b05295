"""Reading image pairs from disk and writing results safely (no ROS)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImagePair:
    """Paths of one registered pair and the name its outputs get."""

    name: str
    visible: Path
    thermal: Path


def read_visible(path: str | os.PathLike) -> np.ndarray:
    """Read a visible image as ``(H, W, 3)`` uint8 BGR (gray files are expanded to 3 channels).

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read visible image {path} (missing or not an image)")
    return image


def read_thermal(path: str | os.PathLike) -> np.ndarray:
    """Read a thermal image as ``(H, W)`` uint8 or uint16 (16-bit PNG/TIFF keep their depth).

    Colour files (thermal stored as 3-channel gray, as in LLVIP) are converted to gray.

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot read thermal image {path} (missing or not an image)")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"thermal image {path} has unsupported depth {image.dtype}")
    return image


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image files of a folder keyed by file stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def find_pairs(visible_dir: str | os.PathLike, thermal_dir: str | os.PathLike,
               ) -> tuple[list[ImagePair], list[str]]:
    """Match the images of two folders by file stem.

    Returns:
        ``(pairs, unmatched)``: pairs sorted by name, and the stems found in only one folder.
    """
    visible, thermal = list_images(visible_dir), list_images(thermal_dir)
    pairs = [ImagePair(stem, visible[stem], thermal[stem])
             for stem in sorted(visible.keys() & thermal.keys())]
    unmatched = sorted(visible.keys() ^ thermal.keys())
    return pairs, unmatched


def write_image_atomic(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write an image through a temporary file and a rename.

    Args:
        path: destination (its suffix picks the format).
        image: uint8 array as OpenCV expects (BGR for colour).
        overwrite: replace an existing file (otherwise raise FileExistsError).
    """
    with atomic_output(path, overwrite) as temporary:
        if not cv2.imwrite(str(temporary), image):
            raise InputError(f"OpenCV could not encode {Path(path).suffix} for {path}")
    return Path(path)
