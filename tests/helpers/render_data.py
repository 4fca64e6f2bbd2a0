"""Helpers for the render-data tests: small fits files and a numpy stand-in for the GL renderer."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch



def write_fits(body, path: Path, n: int = 2, seed: int = 0, postures=("supine", None, "prone"),
               extra_bad: bool = True) -> Path:
    """A fits.jsonl like `syrip-gen fit` writes: ``n`` ok fits of random plausible poses seen
    from above, plus one rejected record."""
    g = torch.Generator().manual_seed(seed)
    pose = 0.25 * torch.randn(n, 24, 3, generator=g)
    pose[:, [10, 11, 22, 23]] = 0
    lie = []
    for i in range(n):  # supine: chest facing the camera (body frame +z), with some tilt
        lie.append(np.array([0.0, 0.0, 0.4 * (i - 0.5)]))  # in-plane tilt in the photo
    pose[:, 0] = torch.tensor(np.array(lie), dtype=torch.float32)
    shape = body.shape_for_age(torch.linspace(2, 10, n))
    with torch.no_grad():
        kp = body(pose, shape).keypoints.numpy()
    R = np.diag([1.0, -1.0, -1.0])
    t = np.array([0.0, 0.0, 1.2])
    lines = []
    for i in range(n):
        cam = kp[i] @ R.T + t
        uv = np.stack([600 * cam[:, 0] / cam[:, 2] + 320, 600 * cam[:, 1] / cam[:, 2] + 240], 1)
        rec = {"id": f"ann{i}", "image_id": 100 + i, "file_name": f"img{i}.jpg", "width": 640, "height": 480,
               "source": "test", "status": "ok", "posture": postures[i % len(postures)], "body": body.name,
               "pose": pose[i].tolist(), "shape": shape[i].tolist(), "age_months": float(2 + 8 * i / max(1, n - 1)),
               "camera": {"fx": 600.0, "fy": 600.0, "cx": 320.0, "cy": 240.0, "R": R.tolist(), "t": t.tolist()},
               "keypoints_2d": np.concatenate([uv, np.full((17, 1), 2.0)], 1).tolist(),
               "keypoints_3d": cam.tolist(), "hypothesis": "supine"}
        lines.append(json.dumps(rec))
    if extra_bad:
        lines.insert(1, json.dumps({"id": "bad", "status": "rejected: too few keypoints"}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


class FakeMaker:
    """Rasterises the posed mesh's triangles with numpy (barycentric z-buffer, no GL): the same
    ``render(spec, vertices) -> Rendered`` contract as the real image maker."""

    def __init__(self, cfg, body):
        self.cfg = cfg
        self.faces = body.topology().body_faces

    def render(self, spec, vertices, timer=None, photo_textures=None):
        import cv2

        from syrip_gen.render.image.compose import Rendered

        H, W = spec.height, spec.width
        vertices = np.asarray(vertices)[0]  # single-infant runs: the one body
        cam = spec.camera
        pc = cam.to_camera(vertices)
        u, v = cam.project(vertices)[0].T
        depth = np.full((H, W), np.inf)
        tri = self.faces
        # sample each triangle at 6x6 barycentric points (dense enough at test sizes)
        a = np.linspace(0, 1, 6)
        b1, b2 = np.meshgrid(a, a)
        keep = b1 + b2 <= 1
        b1, b2 = b1[keep], b2[keep]
        b0 = 1 - b1 - b2
        su = b0[None] * u[tri[:, 0], None] + b1[None] * u[tri[:, 1], None] + b2[None] * u[tri[:, 2], None]
        sv = b0[None] * v[tri[:, 0], None] + b1[None] * v[tri[:, 1], None] + b2[None] * v[tri[:, 2], None]
        sz = b0[None] * pc[tri[:, 0], 2, None] + b1[None] * pc[tri[:, 1], 2, None] + b2[None] * pc[tri[:, 2], 2, None]
        iu, iv = np.floor(su + 0.5).astype(int).ravel(), np.floor(sv + 0.5).astype(int).ravel()
        ok = (iu >= 0) & (iu < W) & (iv >= 0) & (iv < H)
        np.minimum.at(depth, (iv[ok], iu[ok]), sz.ravel()[ok])
        mask = np.isfinite(depth)
        body_depth = np.where(mask, depth, 0).astype(np.float32)
        rgb = np.full((H, W, 3), 90, np.uint8)
        rgb[mask] = (150, 180, 220)
        ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return Rendered(jpeg=buf.tobytes(), labels=np.where(mask, 0, -1).astype(np.int8), body_depth=body_depth,
                        depth_mm=np.round(body_depth * 1000).astype(np.uint16), parts=None,
                        provenance={"texture": {"kind": "fake"}, "background": {"kind": "flat"}})


def use_fake_maker(monkeypatch):
    import syrip_gen.render.run as ds
    import syrip_gen.render.image.compose as compose

    monkeypatch.setattr(compose, "make_image_maker", lambda cfg, body: FakeMaker(cfg, body))
    # the run key hashes the code; colleagues edit it while tests run, so pin it here
    monkeypatch.setattr(ds, "code_version", lambda kind=None: "test-code")
    from syrip_gen.render.image.worker import _STATE

    _STATE.clear()


def angle_between(a, b) -> float:
    return math.degrees(math.acos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def prepared_fits(body, folder: Path, n: int = 2) -> list:
    """``n`` fits written by :func:`write_fits` into ``folder``, read back and prepared for
    sampling (``render.world.sources.prepare_fits``)."""
    from syrip_gen.fits import FitRecord
    from syrip_gen.render.world.sources import prepare_fits

    path = write_fits(body, folder / "fits.jsonl", n=n, extra_bad=False)
    return prepare_fits([FitRecord.from_json(json.loads(line)) for line in path.read_text().splitlines()], body)
