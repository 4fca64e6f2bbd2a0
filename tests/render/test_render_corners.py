"""No render shows an empty (black, constant) or stretched corner (issue 26): a small run
through the real image maker with photo backgrounds and photo supports cut from letterboxed
photos, every image scanned by photo_stats.empty_corners (the function a large run's images
can be scanned with too)."""

import cv2
import numpy as np
import pytest
from helpers.render_data import write_fits

from syrip_gen.config import RunConfig
from syrip_gen.render.looks.photo_stats import empty_corners

W, H = 160, 120


def _letterboxed_photo(seed: int) -> np.ndarray:
    """A textured photo (BGR) inside black letterbox bands, as some SyRIP frames are."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(30, 225, (12, 16, 3)).astype(np.float32)
    img = cv2.resize(g, (320, 240), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # fabric-like grain
    img = np.clip(img, 0, 255).astype(np.uint8)
    img[:30], img[-30:] = 0, 0
    return img


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_no_render_has_an_empty_or_stretched_corner(anny_body, tmp_path):
    import json

    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.image.compose import ImageMaker
    from syrip_gen.fits import FitRecord
    from syrip_gen.render.world.sources import prepare_fits
    from syrip_gen.render.looks.uv import TopologyMaps
    from syrip_gen.render.world.variants import sample_variants

    bg_dir = tmp_path / "bg"
    bg_dir.mkdir()
    for i in range(2):
        cv2.imwrite(str(bg_dir / f"b{i}.png"), _letterboxed_photo(i))
    fits = write_fits(anny_body, tmp_path / "fits.jsonl", n=2, extra_bad=False)
    infos = prepare_fits([FitRecord.from_json(json.loads(line)) for line in fits.read_text().splitlines()], anny_body)
    cfg = RenderConfig(width=W, height=H, backgrounds=str(bg_dir), photo_support=0.5, texture_size=64,
                       support_texels_per_m=64, run=RunConfig(workers=1))
    try:
        maker = ImageMaker(cfg, TopologyMaps(anny_body.topology()))
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no EGL renderer here: {err}")
    s = sample_variants([(f, v) for f in infos for v in range(3)], anny_body, cfg.sampling, 7, W, H,
                        n_backgrounds=2)
    kinds, bad = set(), []
    for spec, verts in zip(s.specs, s.scene_vertices):
        for posture in ("supine", "standing"):  # lying: photo supports; upright: floor + background
            sp = spec.replace_body(0, source_posture=posture)
            r = maker.render(sp, verts)
            img = cv2.imdecode(np.frombuffer(r.jpeg, np.uint8), cv2.IMREAD_COLOR)
            kinds.add(r.provenance["support"]["kind"])
            c = empty_corners(img)
            if not c.ok:
                bad.append((sp.fit_index, sp.variant_index, posture, c.empty, c.stretched))
    assert "photo" in kinds and len(kinds) > 1  # both paths were drawn
    assert not bad, bad
