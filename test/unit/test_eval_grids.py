"""``lutfuse eval --grid``: comparison PNGs of several fused folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics.grids import write_comparison_grids


def _write_folder(folder, stems, value):
    folder.mkdir()
    for index, stem in enumerate(stems):
        image = np.full((40, 60), value + index, np.uint8)
        image[10:20, 10:30] = 255 - value
        cv2.imwrite(str(folder / f"{stem}.png"), image)


@pytest.fixture
def folders(tmp_path):
    stems = ["a", "b"]
    for name, value in (("ir", 20), ("vi", 120), ("m1", 60), ("m2", 200)):
        _write_folder(tmp_path / name, stems, value)
    return tmp_path


def test_grid_has_one_panel_per_method_and_baseline(folders):
    methods = {"m1": folders / "m1", "m2": folders / "m2"}
    written = write_comparison_grids(folders / "grids", ["a", "b"], methods, folders / "ir",
                                     folders / "vi", baselines=True, height=40)
    assert [path.name for path in written] == ["a_compare.png", "b_compare.png",
                                               "compare_all.png"]
    row = cv2.imread(str(written[0]))
    # 6 panels (ir, vi, m1, m2, average, max) of 60 px plus 5 gaps of 4 px; 24 px label banner.
    assert row.shape == (40 + 24, 6 * 60 + 5 * 4, 3)
    third_panel = row[24:, 2 * 64:2 * 64 + 60]
    assert int(np.median(third_panel)) == 60          # m1's pixels, in order
    whole = cv2.imread(str(written[-1]))
    assert whole.shape[0] == 2 * (40 + 24) + 4


def test_grid_refuses_to_overwrite_and_names_missing_images(folders):
    methods = {"m1": folders / "m1"}
    write_comparison_grids(folders / "grids", ["a"], methods, folders / "ir", folders / "vi")
    with pytest.raises(FileExistsError):
        write_comparison_grids(folders / "grids", ["a"], methods, folders / "ir", folders / "vi")
    (folders / "m1" / "b.png").unlink()
    with pytest.raises(InputError, match="no m1 image named b"):
        write_comparison_grids(folders / "g2", ["b"], methods, folders / "ir", folders / "vi")
    assert not (folders / "g2" / "compare_all.png").exists()
