"""Camera/sensor effects on finished renders, so synthetic images look less clean.

Pure functions on ``(H, W, 3) uint8`` RGB images (OpenCV underneath); every random one takes
the ``np.random.Generator`` to use (same seed, same bytes). :func:`apply_sensor` samples a
whole chain from a :class:`SensorConfig` and says what it did.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


_NORMAL_256 = None


def standard_normal_u8(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """``shape`` float32 standard-normal noise, fast: one random byte per value mapped through
    the 256 normal quantiles (std rescaled to 1; tails cut at 2.9 sigma). For sensor noise of a
    few grey levels this is indistinguishable from ``rng.standard_normal`` once rounded to
    uint8, at ~1/5 of the cost (640x480x3: ~2 ms instead of ~10 ms)."""
    import cv2

    global _NORMAL_256
    if _NORMAL_256 is None:
        from statistics import NormalDist

        q = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)])
        _NORMAL_256 = (q / q.std()).astype(np.float32)
    idx = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8).reshape(shape)
    return cv2.LUT(idx, _NORMAL_256)


def _luma_chroma_noise(rng: np.random.Generator, shape: tuple, chroma: float) -> np.ndarray:
    """``shape (H, W, 3)`` float32 unit noise: one value per pixel shared by the three channels
    (luminance grain) plus ``chroma`` x independent noise per channel (colour speckle). Real
    photos after demosaicing, denoising and JPEG keep mostly the former: on SyRIP train200
    the chroma noise is ~1/6 of the luma noise (benchmarks/results/realism_scene.md); JPEG
    halves the chroma resolution on top."""
    h, w = shape[:2]
    noise = np.repeat(standard_normal_u8(rng, (h, w)).reshape(h, w, 1), 3, axis=2)
    if chroma > 0:
        noise += np.float32(chroma) * standard_normal_u8(rng, shape)
    return noise


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, chroma: float = 0.0) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``sigma`` grey levels, luminance grain with a
    ``chroma`` share of colour speckle (:func:`_luma_chroma_noise`)."""
    import cv2

    if sigma <= 0:
        return img
    noise = _luma_chroma_noise(rng, img.shape, chroma)
    noise *= np.float32(sigma)
    return cv2.add(img, noise, dtype=cv2.CV_8U)  # rounds and saturates, no float copy of img


def poisson_noise(img: np.ndarray, rng: np.random.Generator, photons: float, chroma: float = 0.0) -> np.ndarray:
    """Shot noise: a white pixel collects ``photons`` photons (fewer = noisier); luminance
    grain with a ``chroma`` share of colour speckle, as :func:`gaussian_noise`.

    Uses the normal approximation of the Poisson law (variance = mean), ~10x faster than
    ``rng.poisson`` per pixel and indistinguishable for the photon counts used here."""
    import cv2

    if photons <= 0:
        return img
    std = np.sqrt(np.arange(256, dtype=np.float32) * np.float32(255.0 / photons))  # per grey level
    noise = _luma_chroma_noise(rng, img.shape, chroma)
    noise *= cv2.LUT(img, std)
    return cv2.add(img, noise, dtype=cv2.CV_8U)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Defocus-like blur of ``sigma`` pixels."""
    import cv2

    return img if sigma <= 0 else cv2.GaussianBlur(img, (0, 0), float(sigma))


def motion_blur(img: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Linear motion blur over ``length`` pixels in direction ``angle_deg`` (0 = horizontal)."""
    import cv2

    n = int(round(length))
    if n < 2:
        return img
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    dx, dy = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    cv2.line(k, (int(round(c - dx * c)), int(round(c - dy * c))), (int(round(c + dx * c)), int(round(c + dy * c))),
             1.0, 1, cv2.LINE_AA)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def color_jitter(img: np.ndarray, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
                 white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Multiply brightness, scale contrast about the mean grey, scale saturation about each
    pixel's grey, then per-channel gains (white balance). Factors of 1 leave it unchanged.

    Every step is linear in the pixel (saturation keeps each pixel's grey, since the grey
    weights sum to 1), so the chain is one 3x4 affine colour map applied by ``cv2.transform``
    in uint8 (~1 ms at 640x480 instead of ~6 ms of float32 numpy)."""
    import cv2

    if brightness == 1.0 and contrast == 1.0 and saturation == 1.0 and tuple(white_balance) == (1.0, 1.0, 1.0):
        return img
    w = np.array([0.299, 0.587, 0.114])
    gain = np.diag(float(brightness) * np.asarray(white_balance, np.float64))  # x -> gain x
    sat = float(saturation) * np.eye(3) + (1.0 - float(saturation)) * np.outer(np.ones(3), w)
    mean_grey = float(w @ gain @ np.asarray(cv2.mean(img)[:3]))  # grey mean after the gains
    M = float(contrast) * sat @ gain
    offset = (1.0 - float(contrast)) * mean_grey * np.ones(3)
    return cv2.transform(img, np.concatenate([M, offset[:, None]], 1))


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    """RGB ``img`` as JPEG bytes at ``quality`` (1-100)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(array: np.ndarray) -> bytes:
    """A uint8/uint16 ``(H, W)`` map (depth in mm, part ids) as lossless PNG bytes."""
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8/uint16 image
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def sample_jpeg_quality(rng: np.random.Generator, low: int = 60, high: int = 95) -> int:
    """A JPEG quality drawn uniformly from ``[low, high]``."""
    return int(rng.integers(low, high + 1))


# Noise of real photos, sigma in grey levels after their own JPEG, shrunk to 320 px on the
# longer side (the ablation's render size): 5th/50th/95th percentiles over SyRIP train200
# (benchmarks/results/realism_scene.md). Renders must not be noisier than the 95th.
REAL_NOISE_LUMA_320 = (0.235, 1.523, 5.665)
REAL_NOISE_CHROMA_320 = (0.083, 0.228, 0.736)


@dataclass(frozen=True)
class SensorConfig:
    """Probabilities and ranges of each effect in :func:`apply_sensor`.

    Noise and JPEG follow the real photos (issue 26): luminance grain of at most a few grey
    levels with little colour speckle (``noise_chroma``), and JPEG qualities as SyRIP's files
    have them (5th-95th percentile 80-95). Earlier defaults (sigma 1-6 per channel, 80-400
    photons, quality 60-95) made renders 2-5x noisier than any real photo, in colour."""

    p_color_jitter: float = 0.8
    brightness: tuple[float, float] = (0.8, 1.2)
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.7, 1.3)
    white_balance: float = 0.08  # per-channel gain spread (± fraction)
    # Blur made renders unreadable (issue 26, benchmarks/results/realism_ablation.md: 1 651 scored renders
    # at 320x240, mean OKS of MediaPipe 0.57-0.60 without blur, 0.36-0.42 with sigma 0.4-1.5, 0.38 with
    # motion blur of 3-9 px; every sensor effect off: AP 0.332 -> 0.464): rarer and milder now.
    p_blur: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 0.8)
    p_motion_blur: float = 0.05
    motion_length: tuple[float, float] = (2.0, 5.0)
    p_noise: float = 0.6
    noise_sigma: tuple[float, float] = (0.5, 4.0)
    p_poisson: float = 0.2
    photons: tuple[float, float] = (2000.0, 20000.0)  # 1.3-4 grey levels of shot noise at mid grey
    noise_chroma: float = 0.15  # colour speckle as a share of the luminance grain
    jpeg_quality: tuple[int, int] = (80, 95)


def apply_sensor(img: np.ndarray, rng: np.random.Generator,
                 config: SensorConfig | None = None) -> tuple[np.ndarray, dict]:
    """Sample and apply colour jitter, blur (Gaussian or motion) and noise (Gaussian and/or
    Poisson), in that order. Returns the image and a JSON-able record of what was applied,
    including the sampled ``jpeg_quality`` to encode with (:func:`encode_jpeg`)."""
    c = config or SensorConfig()
    done: dict = {}
    if rng.uniform() < c.p_color_jitter:
        p = {"brightness": rng.uniform(*c.brightness), "contrast": rng.uniform(*c.contrast),
             "saturation": rng.uniform(*c.saturation),
             "white_balance": tuple(1.0 + rng.uniform(-c.white_balance, c.white_balance, 3))}
        img = color_jitter(img, **p)
        done["color_jitter"] = {k: (np.round(v, 4).tolist() if isinstance(v, tuple) else round(float(v), 4))
                                for k, v in p.items()}
    if rng.uniform() < c.p_motion_blur:
        length, angle = rng.uniform(*c.motion_length), rng.uniform(0, 180)
        img = motion_blur(img, length, angle)
        done["motion_blur"] = {"length": round(float(length), 3), "angle": round(float(angle), 2)}
    elif rng.uniform() < c.p_blur:
        sigma = rng.uniform(*c.blur_sigma)
        img = gaussian_blur(img, sigma)
        done["blur_sigma"] = round(float(sigma), 3)
    if rng.uniform() < c.p_poisson:
        photons = rng.uniform(*c.photons)
        img = poisson_noise(img, rng, photons, c.noise_chroma)
        done["poisson_photons"] = round(float(photons), 1)
    if rng.uniform() < c.p_noise:
        sigma = rng.uniform(*c.noise_sigma)
        img = gaussian_noise(img, rng, sigma, c.noise_chroma)
        done["noise_sigma"] = round(float(sigma), 3)
    done["jpeg_quality"] = sample_jpeg_quality(rng, *c.jpeg_quality)
    return img, done
