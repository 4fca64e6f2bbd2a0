"""A user's folder of images (body textures, background photos), read at random.

Unreadable files, truncated ones included (OpenCV decodes a cut-off JPEG with the missing part
grey and only libjpeg's message on stderr), are skipped, warned about once and counted
(``unreadable``: file name -> 1); an empty folder, or one with no readable image, is a
:class:`UserError`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.paths import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


class ImageFolder:
    def __init__(self, path: str | Path, what: str):
        self.path, self.what = Path(path), what
        if not self.path.is_dir():
            raise UserError(f"{what} folder {self.path} does not exist")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise UserError(f"{what} folder {self.path} has no images ({', '.join(IMAGE_SUFFIXES)})")
        self.unreadable: dict[str, int] = {}
        self._whole: set[str] = set()  # files checked complete once (the check decodes the file)

    def read_random(self, rng: np.random.Generator, subset: list[int] | None = None) -> tuple[Path, np.ndarray]:
        """A random readable image (of ``subset``, indices into ``files``, when given): its path
        and ``(H, W, 3) uint8`` BGR pixels."""
        from syrip_gen.atomic import read_image

        order = rng.permutation(len(self.files)) if subset is None else np.asarray(subset)[rng.permutation(len(subset))]
        for i in order:
            path = self.files[i]
            if path.name in self.unreadable:
                continue
            img = read_image(path)
            if img is not None and path.name not in self._whole:
                if is_truncated(path):
                    img = None
                else:
                    self._whole.add(path.name)
            if img is None:
                log.warning("%s %s unreadable or truncated; skipped", self.what, path)
                self.unreadable[path.name] = 1
                continue
            return path, img
        raise UserError(f"{self.what} folder {self.path}: none of its {len(self.files)} images could be read")


def is_truncated(path: Path) -> bool:
    """Whether an image file that OpenCV decodes is cut off (Pillow refuses to load it)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError):  # "image file is truncated", broken PNG chunks, ...
        return True
    return False
