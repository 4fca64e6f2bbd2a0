"""Golden bytes: a small fixed render and a small fixed fit hash to the values recorded before the
house was rebuilt (issue 11), so moving code between modules cannot change a render, an
annotation or a fit unnoticed.

The hashes hold on the machine they were recorded on (its torch, Mesa llvmpipe and OpenCV
builds); on another platform print fresh ones with ``python tests/test_golden.py`` on an
unchanged checkout first. The run key in the COCO ``info`` hashes the stage code, so the code
hash is pinned here (as in the other render tests): the test compares outputs, not sources.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKELETONS = ROOT / "assets" / "postures" / "skeletons.json"

GOLDEN = {  # recorded on main 583df9e (2-core CPU, llvmpipe)
    # the COCO info names the fits file since 2nd landing of issue 11 (only change: info.fits)
    # issue 14: the recorded render config lists the new (default-off) sampling fields
    # issue 13: procedural bodies changed on purpose (hair, more sleepsuits and long sleeves):
    # new images, contact sheet and texture provenance in the annotations
    "annotations": "7fb1d71b29275eb4367a2b64d8d68a37d98a60d35b91f7bec92dd9258340186b",
    "images": "0698187aec7d97f2fcef66b9ae6a26ebded9aa574483655afc06e300bca2c027",
    "contact_sheet": "607f6f03ca64261e445fcad13b140ae400c4cc41300bd75796ed7906fd2a9974",
    "fits": "e32a19b78f381d6d1e2c38c70826c100b7008bc77f1ed715e9eddffa7a84f0df",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_hashes(body, tmp: Path) -> dict[str, str]:
    """3 fits x 2 variants at 160x120 through the real GL image maker (procedural appearance,
    shadows on half the images, depth and part maps): hashes of the COCO file, of every
    written image's bytes (name + bytes, in name order) and of the contact sheet."""
    from test_render_data_helpers import write_fits

    from syrip_gen.dataset import RenderConfig, render_dataset
    from syrip_gen.render.compose import _STATE

    fits = write_fits(body, tmp / "fits" / "fits.jsonl", n=3, seed=7)
    cfg = RenderConfig(variants=2, seed=5, width=160, height=120, workers=1, shadows=0.5, depth=True,
                       parts=True, texture_size=64, support_texels_per_m=64, shard_size=4)
    _STATE.clear()
    s = render_dataset(fits, tmp / "data", cfg)
    out = Path(s.out_dir)
    h = hashlib.sha256()
    for f in sorted((out / "shards").rglob("*")):
        if f.is_file() and f.name != "shard.json":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return {"annotations": _sha(Path(s.annotation_path).read_bytes()), "images": h.hexdigest(),
            "contact_sheet": _sha((out / "contact_sheet.jpg").read_bytes())}


def fit_hashes(body, tmp: Path) -> dict[str, str]:
    """The first 4 bundled posture skeletons through a short 3-stage fit: hash of the fit
    records (less ``source``, the input's absolute path)."""
    from syrip_gen.fit.fitter import FitConfig, Stage, fit_file

    stages = (Stage(6, 0.20, 0.05, optimise_pose=False, lr=0.05), Stage(6, 0.10, 0.02),
              Stage(6, 0.05, 0.008, optimise_shape=True))
    cfg = FitConfig(overlays=False, threads=1, limit=4, stages=stages, batch_size=2)
    fit_file(SKELETONS, tmp / "fitted", cfg, body=body, progress=False)
    records = [json.loads(line) for line in (tmp / "fitted" / "fits.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("source", None)
    return {"fits": _sha(json.dumps(records, sort_keys=True).encode())}


@pytest.fixture
def pinned_code(monkeypatch):
    import syrip_gen.dataset as ds

    monkeypatch.setattr(ds, "code_version", lambda kind=None: "golden-code")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_golden_render(anny_body, tmp_path, pinned_code):
    got = render_hashes(anny_body, tmp_path)
    assert got == {k: GOLDEN[k] for k in got}


def test_golden_fit(anny_body, tmp_path):
    assert fit_hashes(anny_body, tmp_path) == {"fits": GOLDEN["fits"]}


if __name__ == "__main__":  # print the hashes of this checkout
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import syrip_gen.dataset as ds
    from syrip_gen.body import load_body

    ds.code_version = lambda kind=None: "golden-code"
    anny = load_body("anny")
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps({**render_hashes(anny, Path(d)), **fit_hashes(anny, Path(d))}, indent=4))
