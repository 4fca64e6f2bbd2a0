"""Rendered image -> COCO records: projection, visibility from depth, box, RLE, 3D, provenance.

Pure NumPy (plus pycocotools for RLE); no GL, no torch. Pixel convention is OpenCV's: pixel
``(i, j)`` has its centre at ``u = i, v = j``, so a point at ``(u, v)`` falls in pixel
``(round(u), round(v))`` and is in the frame when ``-0.5 <= u < W - 0.5`` (same for v).

One image may hold several infants (a scene of N bodies): each gets its own annotation, its
mask the pixels where it is the front-most surface (the renderer's labels), so a keypoint hidden
by another infant is v=1 like one hidden by its own body. Annotation ids: the first infant's is
the image id (single-infant datasets keep their ids), infant k's is ``k * ANNOTATION_STRIDE +
image id`` (:func:`annotation_id`), unique while image ids stay below the stride.

Visibility (COCO v): 2 if the keypoint is in the frame, its pixel is on the infant's mask, and
somewhere in a small neighbourhood the body's front surface lies no more than ``tolerance``
in front of it (keypoints sit inside the body, so the tolerance is tied to body size: about
5.5 % of the body length, 3–5 cm); 1 if in the frame but hidden; 0 outside the frame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.geometry import project

log = logging.getLogger(__name__)

ANNOTATION_STRIDE = 10**12  # > any image id (fit index x 10 000 + variant + 1 for fewer than 10^8 fits)

# L/R shoulder, hip, knee, ankle indices (COCO-17) for a pose-independent body length
_NOSE, _LSH, _RSH, _LHIP, _RHIP, _LKNEE, _RKNEE, _LANK, _RANK = 0, 5, 6, 11, 12, 13, 14, 15, 16


@dataclass
class SceneAnnotation:
    """One image's COCO image record and one annotation per infant (or why there are none)."""

    image: dict | None
    annotations: list[dict]
    reason: str | None = None


def annotation_id(image_id: int, track: int) -> int:
    """The id of infant ``track``'s annotation in image ``image_id`` (see the module docstring)."""
    return int(image_id) if track == 0 else int(track) * ANNOTATION_STRIDE + int(image_id)


def body_length(kp: np.ndarray) -> float:
    """Pose-independent body length (m) of COCO keypoints ``(17, 3)``: nose -> mid-shoulder ->
    mid-hip, plus the mean leg (hip -> knee -> ankle)."""
    mid_sh = (kp[_LSH] + kp[_RSH]) / 2
    mid_hip = (kp[_LHIP] + kp[_RHIP]) / 2
    legs = [np.linalg.norm(kp[k] - kp[h]) + np.linalg.norm(kp[a] - kp[k])
            for h, k, a in ((_LHIP, _LKNEE, _LANK), (_RHIP, _RKNEE, _RANK))]
    return float(np.linalg.norm(mid_sh - kp[_NOSE]) + np.linalg.norm(mid_hip - mid_sh) + np.mean(legs))


def depth_tolerance(kp: np.ndarray, frac: float = 0.055, lo: float = 0.03, hi: float = 0.05) -> float:
    """How far (m) behind the visible surface a keypoint may lie and still count as visible."""
    return float(np.clip(frac * body_length(kp), lo, hi))


def keypoint_visibility(uv: np.ndarray, z: np.ndarray, mask: np.ndarray, body_depth: np.ndarray,
                        tolerance: float, radius: int = 1) -> np.ndarray:
    """COCO visibility ``(K,) int64`` of keypoints at pixels ``uv (K, 2)`` with camera depth
    ``z (K,)``, given the body's visible mask ``(H, W) bool`` and its depth ``(H, W) float32``
    (metres along the optical axis; any value off the mask)."""
    H, W = mask.shape
    u = np.floor(uv[:, 0] + 0.5).astype(np.int64)
    v = np.floor(uv[:, 1] + 0.5).astype(np.int64)
    in_frame = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z > 0)
    vis = np.where(in_frame, 1, 0).astype(np.int64)
    if not in_frame.any():
        return vis
    uc, vc = np.clip(u, 0, W - 1), np.clip(v, 0, H - 1)
    offs = np.arange(-radius, radius + 1)
    du, dv = np.meshgrid(offs, offs)
    nu = np.clip(uc[:, None] + du.ravel()[None], 0, W - 1)  # (K, n)
    nv = np.clip(vc[:, None] + dv.ravel()[None], 0, H - 1)
    near = mask[nv, nu] & (z[:, None] <= body_depth[nv, nu] + tolerance)
    visible = in_frame & mask[vc, uc] & near.any(1)
    vis[visible] = 2
    return vis


def encode_mask(mask: np.ndarray) -> tuple[dict, list[float] | None, float]:
    """COCO RLE of a ``(H, W) bool`` mask (``counts`` as str, JSON-ready), its ``[x, y, w, h]``
    box (None when empty) and its area in pixels, the box and area by pycocotools."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    area = float(mask_utils.area(rle))
    box = mask_utils.toBbox(rle).tolist() if area else None
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}, box, area


def _r(a: np.ndarray, nd: int) -> list:
    return np.round(np.asarray(a, np.float64), nd).tolist()


def annotate_scene(image_id: int, file_name: str, spec, keypoints_world: np.ndarray, labels: np.ndarray,
                   body_depth: np.ndarray, postures: list[str], provenance: list[dict]) -> SceneAnnotation:
    """COCO image record + one annotation per infant of a rendered scene (one infant or several).

    ``spec``: the :class:`~syrip_gen.render.world.spec.VariantSpec` (camera, bodies);
    ``keypoints_world (N, 17, 3)``: each infant's posed keypoints (world); ``labels (H, W) int8``:
    which infant each pixel shows (-1: none), from the renderer; ``body_depth (H, W) float32``:
    the front-most body's depth; ``postures``, ``provenance``: one per infant. An image whose
    first infant has an empty mask is rejected (reason ``empty_mask``), one where a further
    infant is hidden altogether too (``infant_hidden``): it would carry a body with no box.
    """
    image, anns = None, []
    for k in range(len(keypoints_world)):
        img, ann = _annotate_body(image_id, file_name, spec, k, keypoints_world[k], labels == k, body_depth,
                                  postures[k], provenance[k])
        if ann is None:
            return SceneAnnotation(image=None, annotations=[], reason="empty_mask" if k == 0 else "infant_hidden")
        image = image if image is not None else img
        anns.append(ann)
    return SceneAnnotation(image=image, annotations=anns)


def _annotate_body(image_id: int, file_name: str, spec, track: int, keypoints_world: np.ndarray,
                   mask: np.ndarray, body_depth: np.ndarray, posture: str,
                   provenance: dict) -> tuple[dict, dict | None]:
    """COCO image record and annotation (None: empty ``mask``) of infant ``spec.bodies[track]``,
    whose posed world keypoints are ``keypoints_world (17, 3)`` and visible pixels ``mask (H, W)``."""
    cam = spec.camera
    kp_cam = np.round(cam.to_camera(keypoints_world), 6)  # stored precision
    uv = project(kp_cam, cam.K)
    vis = keypoint_visibility(uv, kp_cam[:, 2], mask, body_depth, depth_tolerance(kp_cam))
    H, W = mask.shape
    image = {"id": int(image_id), "file_name": file_name, "width": int(W), "height": int(H),
             "is_synthetic": True, "posture": posture,
             "camera": cam.to_dict()}
    rle, bbox, area = encode_mask(mask)
    if bbox is None:
        return image, None
    keypoints = np.concatenate([np.round(uv, 3), vis[:, None].astype(np.float64)], 1)
    body = spec.bodies[track]
    ann = {
        "id": annotation_id(image_id, track), "image_id": int(image_id), "category_id": 1, "iscrowd": 0,
        "track_id": int(track),
        "keypoints": [float(x) if i % 3 < 2 else int(x) for i, x in enumerate(keypoints.ravel())],
        "num_keypoints": int((vis > 0).sum()),
        "bbox": bbox, "area": area, "segmentation": rle,
        "keypoints_3d": kp_cam.tolist(), "posture": posture,
        "body": {"model": body.body, "pose": _r(body.pose, 6), "shape": _r(body.shape, 6),
                 "age_months": round(float(body.age_months), 4)},
        "provenance": provenance,
    }
    if body.contact:
        ann["contact"] = dict(body.contact)  # {"part", "gap_m", "margin_m", "tilt_deg"}: filter's contact gates
    return image, ann


# ---- the provenance block and the synthetic annotation as read back -------------------------
# Key names the provenance's source fit id had in drafts of other tools; nothing here writes
# them, and :func:`migrate_provenance` reads them as ``fit_id``.
OLD_FIT_ID_KEYS = ("source_fit_id", "source_fit", "fit")


def provenance_blocks(rendered, spec, sources: list, pose_check: str, with_spec: bool = True,
                      clips: list[dict] | None = None) -> list[dict]:
    """One annotation ``provenance`` per infant of a rendered scene (stills and clip frames alike):
    what was drawn (``rendered.provenance``: texture, background, support, sensor), the scene's
    lights, ambient, shadows, seed and pose check, the spec that redraws it (``with_spec``; a
    clip records it on its first frame), and per infant its source fit (``sources[k]``: an
    object with ``source_image_id``/``source_file``, or None), its own texture and its
    ``clips[k]`` entry in a clip."""
    scene = {**rendered.provenance, "lights": [dict(x) for x in spec.lighting.lights],
             "ambient": spec.lighting.ambient, "shadows": spec.lighting.shadows, "seed": list(spec.seed),
             "pose_check": pose_check}
    if with_spec:
        scene["spec"] = spec.to_json()
    blocks = []
    for k, b in enumerate(spec.bodies):
        texture = rendered.textures[k] if k < len(rendered.textures) else rendered.provenance.get("texture")
        block = {"fit_id": b.fit_id, "source_image_id": getattr(sources[k], "source_image_id", None),
                 "source_file": getattr(sources[k], "source_file", None), **scene, "texture": texture}
        if clips is not None:
            block["clip"] = clips[k]
        blocks.append(block)
    return blocks


def migrate_provenance(prov) -> tuple[dict, bool]:
    """``prov`` with the source fit id under ``fit_id`` (an old key name moved there) and
    whether anything was moved; anything but a dict is an empty provenance."""
    if not isinstance(prov, dict):
        return {}, False
    if prov.get("fit_id") is None:
        for key in OLD_FIT_ID_KEYS:
            if prov.get(key) is not None:
                return {**{k: v for k, v in prov.items() if k != key}, "fit_id": prov[key]}, True
    return prov, False


@dataclass(frozen=True)
class SyntheticAnnotation:
    """One infant's COCO annotation as the gates and statistics read it (a real annotation
    reads too, its synthetic fields None). ``keypoints (17, 3) float64``; ``pose (24, 3)
    float64`` or None; ``provenance`` migrated (:func:`migrate_provenance`)."""

    id: int | None
    image_id: object
    track_id: int | None  # None: the annotation has none (a real one)
    keypoints: np.ndarray
    bbox: list | None
    posture: str | None
    keypoints_3d: list | None
    body_model: str | None
    pose: np.ndarray | None
    shape: list | None
    contact: dict | None
    provenance: dict

    @property
    def fit_id(self) -> str | None:
        """The source fit's id (provenance), as a string."""
        fid = self.provenance.get("fit_id")
        return None if fid is None else str(fid)

    @classmethod
    def from_json(cls, ann: dict, provenance: dict | None = None) -> SyntheticAnnotation:
        """``provenance``: the annotation's, already migrated (read_annotations counts the moves);
        None: migrated here."""
        if provenance is None:
            provenance = migrate_provenance(ann.get("provenance"))[0]
        body = ann.get("body") if isinstance(ann.get("body"), dict) else {}
        try:
            pose = np.asarray(body.get("pose"), dtype=np.float64).reshape(24, 3)
        except (TypeError, ValueError):
            pose = None
        contact = ann.get("contact") if isinstance(ann.get("contact"), dict) else None
        return cls(id=ann.get("id"), image_id=ann.get("image_id"), track_id=ann.get("track_id"),
                   keypoints=np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3),
                   bbox=ann.get("bbox"), posture=ann.get("posture"), keypoints_3d=ann.get("keypoints_3d"),
                   body_model=body.get("model"), pose=pose, shape=body.get("shape"), contact=contact,
                   provenance=provenance)


ANNOTATION_VERSION = 1  # ``info.schema_version`` of the COCO files render and sequence write


def synthetic_info(description: str, **fields) -> dict:
    """The COCO ``info`` of a render or sequence dataset: its description, the annotation schema
    version (:data:`ANNOTATION_VERSION`) and the run's ``fields`` (run key, config, fits)."""
    return {"description": description, "schema_version": ANNOTATION_VERSION, **fields}


def annotation_version(info: dict | None, where: str = "") -> int:
    """The schema version of a COCO file's annotations: 0 for files without one (real data, and
    renders made before the field; their old provenance keys are migrated when read), a one-line
    error for a version newer than this syrip-gen reads."""
    version = info.get("schema_version", 0) if isinstance(info, dict) else 0
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= ANNOTATION_VERSION:
        raise UserError(f"{where or 'dataset'}: annotation schema_version {version!r}; this syrip-gen reads "
                        f"versions 0-{ANNOTATION_VERSION} (update syrip-gen)")
    return version


def read_synthetic(coco) -> list[SyntheticAnnotation]:
    """The annotations of a loaded COCO file (``coco.KeypointFile``) as :class:`SyntheticAnnotation`,
    after checking its schema version (:func:`annotation_version`)."""
    annotation_version(coco.data.get("info"), str(coco.path))
    return read_annotations(coco.annotations, str(coco.path))


def read_annotations(anns: list[dict], where: str = "") -> list[SyntheticAnnotation]:
    """:meth:`SyntheticAnnotation.from_json` of each, with one warning when old provenance key
    names were read (``where``: the file, for the message)."""
    out, old = [], 0
    for a in anns:
        provenance, was_moved = migrate_provenance(a.get("provenance"))
        old += was_moved
        out.append(SyntheticAnnotation.from_json(a, provenance))
    if old:
        log.warning("%s: %d annotation(s) name their source fit by an old provenance key (%s); read as fit_id",
                    where, old, "/".join(OLD_FIT_ID_KEYS))
    return out
