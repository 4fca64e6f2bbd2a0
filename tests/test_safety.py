"""Never lose or corrupt a user's data: bad inputs and faults (issue 16), one test per case.

Renders use the numpy stand-in for GL (``FakeMaker``) where the pixels do not matter."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_render_data_helpers import use_fake_maker, write_fits

from syrip_gen.dataset import RenderConfig, render_dataset
from syrip_gen.errors import UserError

CFG = RenderConfig(variants=2, width=160, height=120, workers=1, shard_size=2, seed=7, contact_sheet=False)


@pytest.fixture
def fits(anny_body, tmp_path):
    return write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- 1. render never writes into a folder it did not make ---------------------------------
def test_render_refuses_a_users_dataset_even_with_force(fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    theirs = tmp_path / "SyRIP"
    (theirs / "annotations").mkdir(parents=True)
    (theirs / "images").mkdir()
    (theirs / "annotations/person_keypoints_train_infant.json").write_text('{"images": [1, 2, 3]}')
    (theirs / "images/000000_0000.jpg").write_bytes(b"a real photo")
    before = _tree(theirs)
    for cfg in (CFG, replace(CFG, force=True)):
        with pytest.raises(UserError, match="not empty and was not made by `syrip-gen render`"):
            render_dataset(fits, theirs, cfg)
    assert _tree(theirs) == before
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        render_dataset(fits, afile, CFG)
    # an empty folder, and a folder of an earlier render run, are fine
    (tmp_path / "empty").mkdir()
    assert render_dataset(fits, tmp_path / "empty", CFG).images == 4
    assert render_dataset(fits, tmp_path / "empty", CFG).shards_resumed == 2


# ---- 4. records of another body model are skipped and counted, not rendered with Anny ------
def test_render_skips_fits_of_an_unknown_body(anny_body, fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    lines = fits.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["body"] = "martian"
    fits.write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    s = render_dataset(fits, tmp_path / "ds", CFG)
    why = "fit made with another body model ('martian', not 'anny')"
    assert s.fits_used == 1 and s.fits_skipped[why] == 1 and s.images == 2
    assert any("martian" in w for w in s.warnings)
