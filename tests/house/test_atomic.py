"""syrip_gen.atomic, the one module for file reads and writes: all or nothing, errors name the
target, one image reader that counts unreadable files.

Issue 24; issue 33 (one module for file reads and writes)."""
import errno
import json
import re
from collections import Counter

import numpy as np
import pytest

from syrip_gen import atomic
from syrip_gen.paths import REPO_ROOT


def test_write_json_round_trips_numpy_values_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic.atomic_write_json(path, {"b": np.float32(1.5), "a": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": 1.5}
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temp(tmp_path):
    path = tmp_path / "a.npz"
    atomic.atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, x=np.zeros(3))
            raise RuntimeError("killed midway")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_an_os_error_names_the_target_not_the_temp(tmp_path):
    path = tmp_path / "a.json"

    with pytest.raises(OSError) as info:
        with atomic.atomic_path(path):
            raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/.a.json.x.tmp")
    assert info.value.filename == str(path) and info.value.errno == errno.ENOSPC


def test_an_image_written_atomically_reads_back_and_a_bad_one_is_counted(tmp_path):
    img = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    atomic.atomic_write_image(tmp_path / "a.png", img)
    assert np.array_equal(atomic.read_image(tmp_path / "a.png"), img)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    skipped = Counter()
    assert atomic.read_image(tmp_path / "bad.jpg", skipped=skipped) is None
    assert atomic.read_image(str(tmp_path / "missing.png"), skipped=skipped, why="gone") is None
    assert skipped == {"image unreadable": 1, "gone": 1}


def test_a_link_replaces_the_target_with_the_source(tmp_path):
    src, dst = tmp_path / "src.json", tmp_path / "dst.json"
    src.write_text("new")
    dst.write_text("old")
    atomic.atomic_link(src, dst)
    assert dst.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["dst.json", "src.json"]


def test_files_are_written_and_images_read_only_through_atomic():
    """One owner: no atomic writer is imported through syrip_gen.coco, no bare cv2.imread."""
    root = REPO_ROOT
    through_coco = re.compile(r"from syrip_gen\.coco import (\([^)]*|[^\n(]*)\batomic_|coco\.atomic_")
    bad, read = [], 0
    for folder in ("syrip_gen", "pose_models", "benchmarks", "scripts", "tests"):
        for f in sorted((root / folder).rglob("*.py")):
            text, read = f.read_text(), read + 1
            if through_coco.search(text) or (folder in ("syrip_gen", "pose_models") and f.name != "atomic.py"
                                             and "cv2.imread(" in text):
                bad.append(str(f.relative_to(root)))
    assert bad == [] and read > 100
