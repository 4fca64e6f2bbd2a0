"""Sensor effects stay within the noise the real photos show (issue 26): measured by the same
estimator (photo_stats.noise_sigma) after the JPEG the render is saved with."""
import numpy as np

from syrip_gen.render.pixels import sensor
from syrip_gen.render.looks.photo_stats import noise_sigma


def _clean(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A smooth, noise-free picture (what the renderer makes before sensor effects)."""
    import cv2

    rng = np.random.default_rng(seed)
    g = rng.uniform(40, 215, (4, 5, 3)).astype(np.float32)
    return np.clip(cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def _through_sensor(img, seed, cfg=None):
    import cv2

    out, rec = sensor.apply_sensor(img, np.random.default_rng(seed), cfg)
    jpeg = sensor.encode_jpeg(out, rec["jpeg_quality"])
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), rec


def test_sensor_noise_stays_within_the_real_photos_range():
    luma, chroma = [], []
    for seed in range(40):
        out, rec = _through_sensor(_clean(seed), seed)
        n = noise_sigma(out)
        luma.append(n.luma)
        chroma.append(n.chroma)
        assert 80 <= rec["jpeg_quality"] <= 95
    assert np.percentile(luma, 95) <= sensor.REAL_NOISE_LUMA_320[2]
    assert np.percentile(chroma, 95) <= sensor.REAL_NOISE_CHROMA_320[2]
    assert max(luma) > sensor.REAL_NOISE_LUMA_320[0]  # some noise is still there


def test_old_sensor_ranges_were_noisier_than_the_real_photos():
    """The measure can fail: the earlier defaults (per-channel sigma 1-6, 80-400 photons)
    exceed the real photos' 95th percentile of luma noise."""
    old = sensor.SensorConfig(noise_sigma=(1.0, 6.0), photons=(80.0, 400.0), noise_chroma=1.0, jpeg_quality=(60, 95))
    luma = [noise_sigma(_through_sensor(_clean(s), s, old)[0]).luma for s in range(40)]
    assert np.percentile(luma, 95) > sensor.REAL_NOISE_LUMA_320[2]


def test_grain_is_mostly_luminance():
    img = np.full((120, 160, 3), 128, np.uint8)
    grain = sensor.gaussian_noise(img, np.random.default_rng(0), 4.0, chroma=0.0)
    assert (grain[..., 0] == grain[..., 1]).all() and grain.std() > 3
    speckle = sensor.gaussian_noise(img, np.random.default_rng(0), 4.0, chroma=1.0)
    assert (speckle[..., 0] != speckle[..., 1]).mean() > 0.5
