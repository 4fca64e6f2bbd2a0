"""Drawing one planned clip: every frame rendered by the worker's ``ImageMaker`` inside its clip
scope (texture, support and background made once), labelled with ``annotate_scene`` (one
annotation per infant, with its per-frame contact), written to disk; the MP4s are then
streamed from the frames on disk, and a finished clip's manifest is written last (the resume marker).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

# ``ClipConfig`` (render.sequence.clips) and ``ClipPlan`` (render.sequence.clip_plan) appear in annotations only: no import back up


def clip_name(clip_id: int) -> str:
    return f"clip_{clip_id:05d}"


def frame_id(clip_id: int, frame: int) -> int:
    return clip_id * 10000 + frame + 1


def clip_stats(images: list[dict], anns: list[dict], fps: float) -> dict:
    """Per-clip numbers: frames, visible share, keypoint speed and acceleration (px/s, px/s²;
    median over keypoints and infants of the per-frame values, max over frames) from the annotations."""
    from syrip_gen.render.sequence.motion import acceleration

    tracks = sorted({a["track_id"] for a in anns})
    kp = np.array([[a["keypoints"] for a in anns if a["track_id"] == t] for t in tracks], np.float64)
    kp = kp.reshape(len(tracks), -1, 17, 3)  # (N, F, 17, 3)
    xy = kp[..., :2]
    speed = np.linalg.norm(np.diff(xy, axis=1), axis=-1) * fps
    acc = np.stack([acceleration(x, fps) for x in xy]) if xy.shape[1] >= 3 else np.zeros((1, 0, 17))
    diag = float(np.median([math.hypot(a["bbox"][2], a["bbox"][3]) for a in anns]))
    return {"frames": len(images), "visible_share": round(float((kp[..., 2] == 2).mean()), 4),
            "box_diagonal_px": round(diag, 2),
            "speed_px_s": {"median": round(float(np.median(speed)), 3), "max": round(float(speed.max()), 3)},
            "acceleration_px_s2": {"median": round(float(np.median(acc)), 3), "max": round(float(acc.max()), 3)}}


def _frame_contact(b, verts: np.ndarray, mask, support_y: float, tol: float) -> dict | None:
    """Infant ``b``'s contact with the support at one frame (``render.world.contact.contact_record``
    against the support plane: a limb pressed into it counts as touching), plus ``sink_m``."""
    from syrip_gen.render.world.contact import contact_record

    if mask is None:
        return None
    v = np.asarray(verts, np.float64).copy()
    sink = max(0.0, support_y - float(v[:, 1].min()))
    v[:, 1] = np.maximum(v[:, 1], support_y)
    rec = contact_record(v, mask, b.source_posture, tol, (b.contact or {}).get("tilt_deg", 0.0))
    return {**rec, "sink_m": round(sink, 4)}


def render_clip(clip_id: int, plan: ClipPlan, fits: dict, cfg: ClipConfig, state, maker, out: Path, key: str) -> dict:
    """Render, label and write one clip, frame by frame (frames go to disk, then stream into the
    MP4s); returns its manifest (also written as its done marker). ``fits``: fit index ->
    ``FitInfo`` (provenance, and the baked photo texture each infant may wear)."""
    import torch

    from syrip_gen.annotate import annotate_scene, provenance_blocks
    from syrip_gen.atomic import atomic_write_bytes, atomic_write_json
    from syrip_gen.gates.penetration import body_parts
    from syrip_gen.posture_label import posture_labels
    from syrip_gen.render.world.contact import contact_mask
    from syrip_gen.render.looks.photo_textures import choose_texture

    name = clip_name(clip_id)
    photo_paths = {i: f.photo_texture for i, f in fits.items() if getattr(f, "photo_texture", None)}
    photos = ([choose_texture(b.appearance_seed, b.fit_index, photo_paths, cfg.render.own_photo_texture)
               for b in plan.spec.bodies] if photo_paths else None)
    F, N = plan.keypoints.shape[:2]
    flat = torch.from_numpy(plan.keypoints.reshape(F * N, 17, 3).astype(np.float32))
    postures = np.asarray(posture_labels(flat, torch.tensor([0.0, 1.0, 0.0])), object).reshape(F, N)
    parts = body_parts(state.body)
    masks = [None if parts is None else contact_mask(parts, b.source_posture) for b in plan.spec.bodies]
    tol = cfg.render.contact.tolerance
    images, anns, reason = [], [], None
    with maker.clip_scope(plan.box):  # texture, support, background: made once for the clip
        for start, chunk in plan.vertices(state.body):
            for c, verts in enumerate(chunk):
                f = start + c
                spec = plan.spec
                for k, b in enumerate(plan.spec.bodies):
                    spec = spec.replace_body(k, pose=tuple(tuple(float(x) for x in p) for p in plan.poses[f, k]),
                                             contact=_frame_contact(b, verts[k], masks[k], plan.spec.support.y, tol))
                spec = dataclasses.replace(spec, camera=plan.cameras[f])
                r = maker.render(spec, verts, photo_textures=photos)
                file_name = f"{name}/{f:06d}.jpg"
                # the spec on the first frame only: later frames differ in poses and camera
                provs = provenance_blocks(r, spec, [fits.get(b.fit_index) for b in spec.bodies], state.checker.kind,
                                          with_spec=f == 0,
                                          clips=[{"name": name, "motion": plan.motions[k],
                                                  "camera_orbit_deg": plan.orbit_deg} for k in range(len(spec.bodies))])
                res = annotate_scene(frame_id(clip_id, f), file_name, spec, plan.keypoints[f], r.labels,
                                     r.body_depth, list(postures[f]), provs)
                if res.image is None:
                    reason = f"{res.reason} at frame {f}"
                    break
                res.image.update({"frame_id": f, "vid_id": clip_id, "clip_id": clip_id, "nframes": F, "fps": cfg.fps,
                                  "is_labeled": True})
                atomic_write_bytes(out / "images" / file_name, r.jpeg)
                images.append(res.image)
                anns.extend(res.annotations)
            if reason is not None:
                break
    infants = [{"track_id": k, "fit_id": b.fit_id, "movement_m": plan.movement_m[k],
                "motion": plan.motions[k]["summary"]} for k, b in enumerate(plan.spec.bodies)]
    manifest = {"run_key": key, "clip_id": clip_id, "name": name, "fit_id": plan.spec.fit_id, "frames": F,
                "fps": cfg.fps,
                "motion": plan.motions[0], "infants": infants, "camera_orbit_deg": plan.orbit_deg, "dropped": reason,
                "images": images if reason is None else [], "annotations": anns if reason is None else []}
    if reason is None:
        manifest["stats"] = clip_stats(images, anns, cfg.fps)
        write_videos(out, manifest, cfg)
    atomic_write_json(out / "annotations" / "clips" / f"{name}.json", manifest)  # last: the done marker
    return manifest


def _frames_from_disk(out: Path, manifest: dict, preview: bool):
    """The clip's written frames, one at a time (decoded from its JPEGs; with ``preview``, with
    every infant's keypoints drawn): what the MP4 writers take, so no clip is held in memory whole."""
    from syrip_gen.atomic import read_image
    from syrip_gen.video import draw_pose

    per_image: dict = {}
    for ann in manifest["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    for img in manifest["images"]:
        frame = read_image(out / "images" / img["file_name"])
        for ann in per_image.get(img["id"], []) if preview else []:
            kp = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
            frame = draw_pose(frame, kp, box=np.asarray(ann["bbox"]), label=f"track {ann['track_id']}")
        yield frame


def write_videos(out: Path, manifest: dict, cfg: ClipConfig) -> bool:
    """Write the MP4s ``cfg`` asks for that the clip lacks (``videos/``: the frames as rendered;
    ``previews/``: with keypoints), streamed from its frames on disk; records them in
    ``manifest``. Returns whether anything was written (a rerun asking for MP4s after a
    ``--no-video`` run makes them from the frames already there, without rendering again)."""
    from syrip_gen.video import write_mp4

    wrote = False
    for want, key, sub in ((cfg.video, "video", "videos"), (cfg.preview, "preview", "previews")):
        rel = f"{sub}/{manifest['name']}.mp4"
        if want and (manifest.get(key) != rel or not (out / rel).is_file()):
            write_mp4(out / rel, _frames_from_disk(out, manifest, key == "preview"), cfg.fps)
            manifest[key] = rel
            wrote = True
    return wrote


def finished_clip(out: Path, clip_id: int, key: str, cfg: ClipConfig) -> dict | None:
    """The finished clip ``clip_id`` of run ``key``, or None to render it (again): not made yet,
    made by another run, or a frame of it deleted or emptied since. MP4s it lacks (deleted, or
    a rerun now asks for them) are made from its frames."""
    p = out / "annotations" / "clips" / f"{clip_name(clip_id)}.json"
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("run_key") != key:
        return None
    for img in m.get("images", []):
        f = out / "images" / img["file_name"]
        if not f.is_file() or f.stat().st_size == 0:
            return None
    if m.get("images") and write_videos(out, m, cfg):
        from syrip_gen.atomic import atomic_write_json

        atomic_write_json(p, m)
    return m


def clip_table(manifests: list[dict], gated: dict | None) -> tuple[list[dict], dict[str, int]]:
    """clips.json's rows (kept, or dropped and why) and the drop counts by reason."""
    dropped: dict[str, int] = {}
    table = []
    for m in manifests:
        g = (gated or {}).get("clips", {}).get(m["clip_id"]) if m["images"] else None
        why = m.get("dropped") or (None if g is None or g["kept"] else
                                   "gates: " + ", ".join(f"{k} x{n}" for k, n in sorted(g["reasons"].items())))
        if why:
            short = why.split(":")[0].split(" at frame")[0].split(" (")[0]
            dropped[short] = dropped.get(short, 0) + 1
        keys = ("clip_id", "name", "fit_id", "frames", "motion", "infants", "camera_orbit_deg", "stats", "preview",
                "video")
        table.append({k: m.get(k) for k in keys} | {"kept": why is None, "dropped": why, "gates": g})
    return table, dropped
