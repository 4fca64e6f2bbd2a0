"""Photo textures for a render run: bake each fit's photo once, cache it, pick one per image.

Why a module of its own: :mod:`syrip_gen.render.looks.bake` is the maths on arrays; this is the
files around it. For every usable fit the photo it was fitted to is found (SyRIP layout:
``<root>/annotations/x.json`` -> ``<root>/images/<file_name>``), baked onto the fitted body
and written to ``DATASET/photo_textures/<key>.png`` with ``<key>.json`` beside it (status,
reason, coverage). The key hashes the fit (pose, shape, camera, body), the photo's bytes, the
bake settings and the bake code, so a rerun reuses every texture and a changed photo is
baked again. The textures are the user's data: they stay in the run's folder.

Counted, never a crash: a fit whose photo is missing or unreadable (empty, truncated, not an
image; or another size than the fit record) is rendered procedurally; a photo whose
segmentation keeps too little of the fitted silhouette is rejected with its reason (also
rendered procedurally).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.codehash import source_hash
from syrip_gen.errors import UserError
from syrip_gen.fits import FitRecord, read_fits, record_path
from syrip_gen.render.looks.bake import BakeConfig, bake
from syrip_gen.render.looks.uv import TopologyMaps, rest_vertices

TEXTURE_DIR = "photo_textures"


@dataclass
class PhotoTextures:
    """Baked textures of a run: ``paths`` fit index -> PNG; ``counts`` reason -> fits."""

    paths: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1



def photo_path(record: dict, fits_path: str | Path | None = None) -> Path | None:
    """The photo a fit record was fitted to: ``image_path`` when the record has one, else
    ``file_name`` under the SyRIP-layout ``images/`` folder beside its keypoint file
    (``source``). Relative paths are looked up beside ``fits_path`` (the fits file) first, then
    from the current directory (fits files written before paths were stored relative to them;
    see :func:`syrip_gen.fits.record_path`)."""
    if record.get("image_path"):
        return record_path(record, "image_path", fits_path)
    src, name = record_path(record, "source", fits_path), record.get("file_name")
    if src is None or not name:
        return None
    root = src.parent.parent if src.parent.name == "annotations" else src.parent
    return root / "images" / name


@dataclass
class PhotoCheck:
    """The photos behind a fits file's ok records, looked up without reading them."""

    signature: str  # hash of each photo's path as recorded, size and modification time
    fits: int  # ok records
    missing: list[str] = field(default_factory=list)  # photos not found (file order)

    def require(self, max_missing: float) -> None:
        """One-line UserError when more than ``max_missing`` of the fits have no photo."""
        share = len(self.missing) / self.fits if self.fits else 0.0
        if share > max_missing:
            raise UserError(
                f"{len(self.missing)} of {self.fits} fits' photos are missing ({share:.0%} > "
                f"max_missing_photos {max_missing:.0%}), e.g. {self.missing[0]}; a fit's photo is "
                "images/<file_name> beside the keypoint file named by its `source` (relative to fits.jsonl; "
                "in older fits files to the folder `fit` ran in): restore the photos, run from that folder, "
                "or raise --max-missing-photos to render those fits procedurally")


def photo_signature(fits_path: str | Path, photo_textures: bool, max_missing: float) -> str:
    """The run-key part of the fits' photos when ``photo_textures`` (``""`` when off); too many missing
    photos is a UserError before any work (render and sequence share this)."""
    if not photo_textures:
        return ""
    photos = find_photos(fits_path)
    photos.require(max_missing)
    return photos.signature


def find_photos(fits_path: str | Path) -> PhotoCheck:
    """The photo of every ok fit of a fits file, by path, size and modification time (cheap:
    nothing is read); the signature keys a render run with photo textures by its photos too."""
    h = hashlib.sha256()
    check = PhotoCheck(signature="", fits=0)
    for r in read_fits(fits_path, bad={}):
        if r.get("status") != "ok":
            continue
        check.fits += 1
        p = photo_path(r, fits_path)
        try:
            st = p.stat() if p is not None else None
        except OSError:
            st = None
        if st is None:
            check.missing.append(str(p) if p is not None else f"(fit {r.get('id')}: no photo recorded)")
        # the path as recorded (not as found): a run's key does not depend on where it was started
        h.update(json.dumps([str(photo_path(r)), st.st_size if st else None, st.st_mtime_ns if st else None]).encode())
    check.signature = h.hexdigest()[:16]
    return check


def _code_hash() -> str:
    return source_hash(("syrip_gen/render/looks/bake.py", "syrip_gen/render/looks/uv.py"))[:12]


def texture_key(record: dict, photo_bytes: bytes, cfg: BakeConfig) -> str:
    """Cache key of one baked texture (fit + photo content + settings + bake code)."""
    h = hashlib.sha256()
    fit = {k: record.get(k) for k in ("pose", "shape", "camera", "body")}
    h.update(json.dumps(fit, sort_keys=True).encode())
    h.update(hashlib.sha256(photo_bytes).digest())
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(_code_hash().encode())
    return h.hexdigest()[:24]


def _read_photo(path: Path | None, record: dict) -> tuple[bytes | None, np.ndarray | None, str | None]:
    """(bytes, RGB image, None) or (.., .., reason it cannot be used)."""
    import cv2

    if path is None or not path.is_file():
        return None, None, "photo missing (rendered procedurally)"
    try:
        data = path.read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except (OSError, cv2.error):  # unreadable file; OpenCV asserts on some damaged ones
        data, img = None, None
    if img is None or _truncated(data):
        return data, None, "photo unreadable (rendered procedurally)"
    w, h = record.get("width"), record.get("height")
    if w and h and img.shape[:2] != (int(h), int(w)):
        return data, None, "photo size differs from the fit record (rendered procedurally)"
    return data, np.ascontiguousarray(img[..., ::-1]), None


def _truncated(data: bytes) -> bool:
    """Whether image bytes that OpenCV decodes are cut off (it fills the rest grey; Pillow refuses)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, SyntaxError, ValueError):  # "image file is truncated", broken PNG chunks, ...
        return True
    return False


def bake_fits(records: list[FitRecord], body, out_dir: str | Path, cfg: BakeConfig | None = None,
              progress: bool = True, fits_path: str | Path | None = None) -> PhotoTextures:
    """Bake (or reuse) the photo texture of every usable fit record of the fits file
    ``fits_path`` (:func:`~syrip_gen.fits.usable_fits`: a record's position is its fit index)
    into ``out_dir``; returns which fits have one and the counts by outcome."""
    import cv2
    import torch
    from tqdm import tqdm

    from syrip_gen.atomic import atomic_write_bytes, atomic_write_json

    cfg = cfg or BakeConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = PhotoTextures()
    maps = None  # the body's topology and rest pose, made when the first photo needs baking
    for index, rec in enumerate(tqdm(records, desc="photo textures", unit="fit", disable=not progress)):
        r = rec.to_json()  # the record as written: photo lookup and cache key read it as the fits file holds it
        data, photo, why = _read_photo(photo_path(r, fits_path), r)
        if why is not None:
            result.add(why)
            continue
        key = texture_key(r, data, cfg)
        png, meta = out / f"{key}.png", out / f"{key}.json"
        try:
            info = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            info = None
        if info is None or (info.get("status") == "ok" and not png.is_file()):
            if maps is None:
                maps = TopologyMaps(body.topology(), rest_vertices(body))
            with torch.no_grad():
                v = body(torch.tensor([rec.pose], dtype=torch.float32), torch.tensor([rec.shape], dtype=torch.float32),
                         with_vertices=True).vertices[0].double().numpy()
            cam = rec.camera
            verts_cam = v @ np.asarray(cam.get("R", np.diag([1.0, -1.0, -1.0])), np.float64).T + np.asarray(cam["t"])
            K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]], np.float64)
            baked = bake(photo, verts_cam, K, maps, cfg, seed=int(key[:8], 16))
            if baked.texture is not None:
                ok, buf = cv2.imencode(".png", baked.texture[..., ::-1])
                atomic_write_bytes(png, buf.tobytes())
            info = {"fit_id": rec.id, "file_name": rec.file_name, **baked.record()}
            atomic_write_json(meta, info)
        if info["status"] == "ok":
            result.paths[index] = str(png)
            result.add("baked")
        else:
            result.add(f"rejected: {info.get('reason')} (rendered procedurally)")
    return result


def choose_texture(appearance_seed: int, fit_index: int, paths: dict[int, str], own_share: float) -> str | None:
    """The photo texture an image wears: none when its fit has none (procedural); else its
    own with probability ``own_share``, otherwise another baked fit's (uniform). Drawn from
    ``appearance_seed`` only, so an image depends on its spec."""
    if fit_index not in paths:
        return None
    rng = np.random.default_rng([int(appearance_seed), 13])
    if len(paths) == 1 or rng.uniform() < own_share:
        return paths[fit_index]
    others = sorted(k for k in paths if k != fit_index)
    return paths[others[int(rng.integers(len(others)))]]


_LOADED: dict[str, np.ndarray] = {}


def load_texture(path: str, size: int) -> np.ndarray:
    """A baked texture ``(size, size, 3) uint8`` RGB (kept in memory: up to 256 per process)."""
    import cv2

    from syrip_gen.atomic import read_image

    key = f"{path}@{size}"
    if key not in _LOADED:
        img = read_image(path)
        if img is None:
            raise FileNotFoundError(path)
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        if len(_LOADED) >= 256:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = np.ascontiguousarray(img[..., ::-1])
    return _LOADED[key]
