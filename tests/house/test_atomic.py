"""The one atomic writer (syrip_gen.atomic): all or nothing, errors name the target.

Issue 24."""
import errno
import json

import numpy as np
import pytest

from syrip_gen import atomic, coco


def test_write_json_round_trips_numpy_values_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic.write_json(path, {"b": np.float32(1.5), "a": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": 1.5}
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temp(tmp_path):
    path = tmp_path / "a.npz"
    atomic.write_bytes(path, b"old")
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


def test_coco_writers_are_the_same_writer(tmp_path):
    coco.atomic_write_json(tmp_path / "c.json", {"x": np.int64(2)})
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": 2}
    assert coco._json_default is atomic.json_default
