"""The COCO-17 keypoint schema: names, flips, sigmas; load, validate and write keypoint files.

This is the only module that knows the COCO keypoint layout. Everything else asks it for
``(N, 17, 3)`` arrays and writes through :func:`write_coco`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.atomic import atomic_write_json
from syrip_gen.errors import UserError

KEYPOINT_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]
NUM_KEYPOINTS = 17
# index of each keypoint's mirror image (left <-> right)
FLIP_INDEX = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
# 1-based limb pairs, as COCO's category record stores them
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# COCO OKS per-keypoint sigmas (pycocotools' values)
SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                   1.07, 1.07, .87, .87, .89, .89]) / 10.0
# The posture labels (lower case; SyRIP files store them capitalised): the one list.
POSTURES = ("supine", "prone", "side", "sitting", "standing")
SYRIP_POSTURES = tuple(p for p in POSTURES if p != "side")  # the labels SyRIP's real images carry

CATEGORY = {
    "supercategory": "person", "id": 1, "name": "person",
    "keypoints": KEYPOINT_NAMES, "skeleton": SKELETON,
}


@dataclass
class KeypointFile:
    """A validated COCO keypoint file: the raw dict plus fast lookups."""

    path: Path
    data: dict
    images: dict[int, dict] = field(default_factory=dict)  # image id -> image record

    @property
    def annotations(self) -> list[dict]:
        return self.data["annotations"]

    @property
    def info(self) -> dict:
        """The file's ``info`` record ({} when absent or not an object)."""
        info = self.data.get("info")
        return info if isinstance(info, dict) else {}

    def image_dir(self) -> Path:
        """SyRIP layout: ``<root>/annotations/x.json`` with images in ``<root>/images``."""
        root = self.path.parent.parent if self.path.parent.name == "annotations" else self.path.parent
        return root / "images"

    def keypoints(self, ann: dict) -> np.ndarray:
        """``(17, 3) float64`` x, y, v of one annotation."""
        return np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)


def find_keypoint_json(path: str | Path) -> Path:
    """Accept a JSON file or a dataset directory in SyRIP layout (``annotations/*.json``)."""
    path = Path(path)
    if path.is_dir():
        found = sorted((path / "annotations").glob("person_keypoints_*.json")) or sorted(path.glob("*.json"))
        if len(found) > 1:  # a filtered copy written beside the original: the directory means the original
            found = [f for f in found if "_filtered" not in f.name] or found
        if len(found) != 1:
            raise UserError(f"{path}: expected one annotations/person_keypoints_*.json, found {len(found)}")
        return found[0]
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    return path


def load_coco(path: str | Path) -> KeypointFile:
    """Load and validate a COCO keypoint file; raise UserError naming the first problem."""
    path = find_keypoint_json(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text (JSON) file") from None
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise UserError(f"{path}: not a COCO keypoint file (needs 'images' and 'annotations')")
    for key in ("images", "annotations"):
        if not isinstance(data[key], list):
            raise UserError(f"{path}: '{key}' must be a list, got {type(data[key]).__name__}")
    images = {}
    for img in data["images"]:
        if not isinstance(img, dict) or "id" not in img:
            raise UserError(f"{path}: an image record has no 'id'")
        if not _is_id(img["id"]):
            raise UserError(f"{path}: image id {img['id']!r} is not an integer or a string")
        images[img["id"]] = img
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise UserError(f"{path}: an annotation has no 'image_id'")
        if not _is_id(ann["image_id"]):
            raise UserError(f"{path}: an annotation's image_id {ann['image_id']!r} is not an integer or a string")
    data.setdefault("categories", [CATEGORY])
    return KeypointFile(path=path, data=data, images=images)


def _is_id(x: object) -> bool:
    return isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool))


def keypoint_problem(kps: object, width: float | None = None, height: float | None = None,
                     min_keypoints: int = 6, margin: float = 0.5) -> str | None:
    """Why a 17x3 keypoint list can't be used, or None. ``margin``: allowed overshoot outside the
    image as a fraction of its size (annotators mark limbs just outside the frame)."""
    if isinstance(kps, (list, tuple)) and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in kps):
        bad = next(v for v in kps if not isinstance(v, (int, float)) or isinstance(v, bool))
        return f"keypoints must be numbers, got {type(bad).__name__} {str(bad)[:20]!r}"
    arr = np.asarray(kps, dtype=np.float64) if isinstance(kps, (list, tuple, np.ndarray)) else None
    if arr is None or arr.size != NUM_KEYPOINTS * 3:
        return f"keypoints must hold 17x3 numbers, got {getattr(arr, 'size', type(kps).__name__)}"
    arr = arr.reshape(NUM_KEYPOINTS, 3)
    used = arr[:, 2] > 0
    if not np.all(np.isfinite(arr[used])):
        return "NaN or infinite keypoint coordinates"
    if used.sum() < min_keypoints:
        return f"only {int(used.sum())} labelled keypoints (need {min_keypoints})"
    if width and height:
        xy = arr[used, :2]
        lo = -margin * np.array([width, height])
        hi = (1 + margin) * np.array([width, height])
        if np.any(xy < lo) or np.any(xy > hi):
            return "keypoints far outside the image"
    return None


def image_posture(img: dict) -> str | None:
    """SyRIP stores posture per image ('Supine', ...); normalised to lower case."""
    p = img.get("posture")
    return p.lower() if isinstance(p, str) and p else None


# ---- the dataset layout (SyRIP): DATASET/annotations/person_keypoints_<split>_infant.json ----
def dataset_json(dataset: str | Path) -> Path:
    """The (unfiltered) COCO file of a dataset directory in SyRIP layout, or the file given."""
    dataset = Path(dataset)
    if dataset.is_file():
        return dataset
    if not dataset.is_dir():
        raise UserError(f"{dataset}: no such dataset directory")
    found = [p for p in sorted((dataset / "annotations").glob("person_keypoints_*.json"))
             if "_filtered" not in p.name]
    if len(found) != 1:
        raise UserError(f"{dataset}: expected one annotations/person_keypoints_<split>_infant.json, "
                        f"found {len(found)}; pass a dataset directory in SyRIP layout (or the JSON file)")
    return found[0]


def dataset_root(coco_path: Path) -> Path:
    """The dataset directory of a COCO file (the parent of ``annotations/``)."""
    return coco_path.parent.parent if coco_path.parent.name == "annotations" else coco_path.parent


def filtered_name(coco_path: Path) -> Path:
    """Where ``filter`` writes a COCO file's kept images: ``..._<split>_filtered_infant.json``."""
    m = re.match(r"person_keypoints_(.+?)(_infant)?\.json$", coco_path.name)
    split = m.group(1) if m else coco_path.stem
    return coco_path.with_name(f"person_keypoints_{split}_filtered_infant.json")


def check_split(split: str, where: str) -> str:
    """``split`` as a name inside ``annotations/`` (one line otherwise): no folder separator, no
    ``..``, not empty; it names the COCO file, so ``a/b`` or ``../x`` would write elsewhere."""
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", split) or ".." in split:
        raise UserError(f"{where}: split must be a plain name (letters, digits, '_', '-', '.'; no '/' or '..'), "
                        f"got {split!r}")
    return split


def annotation_path(dataset: Path, split: str) -> Path:
    """The COCO file a render writes for ``split``."""
    return Path(dataset) / "annotations" / f"person_keypoints_{split}_infant.json"


def write_coco(path: str | Path, images: list[dict], annotations: list[dict], **extra) -> None:
    """Write a COCO keypoint file (atomic, sorted keys) with the person category.

    Annotation ids must be >= 1: pycocotools' COCOeval records a match by the ground-truth id
    and treats id 0 as "unmatched", silently turning a perfect prediction into a miss.
    """
    if any(a.get("id", 1) == 0 for a in annotations):
        raise ValueError("COCO annotation id 0 breaks pycocotools' matching; number from 1")
    atomic_write_json(path, {"images": images, "annotations": annotations,
                             "categories": [CATEGORY], **extra})


def is_finite_number(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
