"""atomic_output: a failed write never damages what was there."""

import pytest

from lutfuse_ros.atomic_files import atomic_output


def test_success_replaces_only_with_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as temporary:
        temporary.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(FileExistsError, match="--force"):
        with atomic_output(target):
            pass
    with atomic_output(target, overwrite=True) as temporary:
        temporary.write_text("second")
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_keeps_the_previous_file_and_leaves_no_debris(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("good model")
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True) as temporary:
            assert temporary.suffix == ".safetensors" and temporary.parent == tmp_path
            temporary.write_text("half writ")
            raise RuntimeError("interrupted")
    assert target.read_text() == "good model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
