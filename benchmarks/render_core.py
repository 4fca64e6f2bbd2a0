"""Speed of the rendering core at 640x480: ms per frame for body only, + support, + shadows,
with and without new vertices every frame; texture generation and texture swaps too.

Writes benchmarks/results/render_core.json and .md (with the hardware and date) and two
example renders (render_core_example_*.jpg). Wall time is what a user waits; CPU time (all
threads of this process, llvmpipe's included) is less sensitive to other work on a shared
machine. Run: ``python benchmarks/render_core.py [--frames 15]``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
RESULTS = Path(__file__).resolve().parent / "results"
W, H = 640, 480


def hardware() -> dict:
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
    from syrip_gen.hardware import lscpu

    info.update(lscpu())
    try:
        from OpenGL import GL  # noqa: F401  (context exists by now)

        info["gl_renderer"] = GL.glGetString(GL.GL_RENDERER).decode()
    except Exception:  # noqa: BLE001 - informative only
        pass
    return info


def bodies():
    """Two poses of a supine 6-month-old (second: an arm and a leg moved), lowest point y = 0."""
    import torch

    from syrip_gen.body import load_body

    body = load_body("anny")
    pose = torch.zeros(2, 24, 3)
    pose[:, 0] = torch.tensor([-np.pi / 2, 0.0, 0.0])
    pose[1, 16, 2], pose[1, 1, 0] = -0.8, -0.6
    v = body(pose, body.shape_for_age(torch.tensor([6.0, 6.0])), with_vertices=True).vertices.detach().numpy()
    return [x - np.float32([0, x[:, 1].min(), 0]) for x in v], body.topology()


def timed(fn, frames: int) -> dict:
    fn(0)  # warm-up (first upload, shader compile)
    wall, cpu = [], []
    for i in range(frames):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(i + 1)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_ms_median": round(1000 * float(np.median(wall)), 1), "wall_ms_min": round(1000 * min(wall), 1),
            "cpu_ms_median": round(1000 * float(np.median(cpu)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=15)
    args = ap.parse_args()

    from syrip_gen.render.looks.appearance import make_texture
    from syrip_gen.render.looks.background import procedural_background, support_texture
    from syrip_gen.render.pixels.renderer import Renderer
    from syrip_gen.geometry import look_at
    from syrip_gen.render.world.scene import BodyMesh, Light, Scene, Support, kelvin_to_rgb
    from syrip_gen.render.pixels.sensor import apply_sensor, encode_jpeg
    from syrip_gen.render.looks.uv import TopologyMaps

    verts, topo = bodies()
    rng = np.random.default_rng(0)
    renderer = Renderer(W, H, topo)
    maps = TopologyMaps(topo)  # UV rasters made once, as in an image maker
    textures = [make_texture(maps, np.random.default_rng(s), 1024)[0] for s in (1, 2)]
    sup_tex, sup_desc = support_texture("blanket", rng)
    support = Support("blanket", -0.001, (1.4, 1.6), sup_tex, tile=sup_desc["tile_m"])
    background, _ = procedural_background(W, H, rng, "room")
    camera = look_at((0.25, 0.85, 0.45), (0.0, 0.04, -0.02), width=W, height=H, fov_deg=55)
    lights = (Light("directional", kelvin_to_rgb(5200), 3.0, direction=(0.4, -1.0, 0.3)),
              Light("point", kelvin_to_rgb(3000), 1.5, position=(-0.6, 1.4, 0.8)))

    def scene(i, with_support, shadows, move, texture_swap=False):
        v = verts[i % 2] if move else verts[0]
        tex = textures[i % 2] if texture_swap else textures[0]
        return Scene(bodies=(BodyMesh(v.copy() if move else v, tex),), camera=camera,
                     support=support if with_support else None, lights=lights, ambient=(0.3, 0.3, 0.3),
                     background=background, shadows=shadows)

    results: dict = {"size": [W, H], "frames": args.frames, "render_vertices": int(len(topo.uvs)),
                     "triangles": int(len(topo.faces)), "cases": {}}
    cases = [("body", False, False), ("body+support", True, False), ("body+support+shadows", True, True)]
    for msaa in (4, 0):
        renderer.msaa = msaa
        for name, with_support, shadows in cases:
            for move in (False, True):
                key = f"{name}, {'new vertices' if move else 'same vertices'}, msaa {msaa}"
                results["cases"][key] = timed(lambda i: renderer.render(scene(i, with_support, shadows, move)),
                                              args.frames)
                print(key, results["cases"][key], flush=True)
    renderer.msaa = 4
    key = "body+support, new vertices + texture swap (1024^2) every frame, msaa 4"
    results["cases"][key] = timed(lambda i: renderer.render(scene(i, True, False, True, True)), args.frames)
    print(key, results["cases"][key], flush=True)
    key = "body+support, parts map, msaa 4"
    results["cases"][key] = timed(lambda i: renderer.render(scene(i, True, False, True), parts=True), args.frames)
    print(key, results["cases"][key], flush=True)
    results["make_texture_1024"] = timed(lambda i: make_texture(maps, np.random.default_rng(100 + i), 1024), args.frames)
    results["make_texture_512"] = timed(lambda i: make_texture(maps, np.random.default_rng(100 + i), 512), args.frames)
    results["sensor_and_jpeg"] = timed(
        lambda i: encode_jpeg(*(lambda r: (r[0], r[1]["jpeg_quality"]))(apply_sensor(background, np.random.default_rng(i)))),
        args.frames)
    print({k: results[k] for k in ("make_texture_1024", "make_texture_512", "sensor_and_jpeg")})
    results["hardware"] = hardware()
    results["date"] = datetime.datetime.now().isoformat(timespec="seconds")

    # example renders
    RESULTS.mkdir(parents=True, exist_ok=True)
    for n, (seed, kind, bg_kind) in enumerate(((11, "mattress", "room"), (12, "floor", "shapes"))):
        r = np.random.default_rng(seed)
        tex, _ = make_texture(maps, r, 1024)
        st, sd = support_texture(kind, r)
        bg, _ = procedural_background(W, H, r, bg_kind)
        size = (1.2, 1.4) if kind != "floor" else (3.0, 3.0)
        sc = Scene(bodies=(BodyMesh(verts[n], tex),), camera=camera, lights=lights, ambient=(0.3, 0.3, 0.3),
                   support=Support(kind, -0.001, size, st, tile=sd["tile_m"]), background=bg, shadows=True)
        img, done = apply_sensor(renderer.render(sc).rgb, r)
        (RESULTS / f"render_core_example_{n + 1}.jpg").write_bytes(encode_jpeg(img, 85))

    from syrip_gen.atomic import atomic_write_bytes

    atomic_write_bytes(RESULTS / "render_core.json", json.dumps(results, indent=1, sort_keys=True).encode())
    lines = [f"# Rendering core speed ({W}x{H})", "",
             f"{results['date']}; {results['hardware'].get('Model name', '?')}, "
             f"{results['hardware']['cpus']} CPUs, GL: {results['hardware'].get('gl_renderer', '?')}; "
             f"load average at the end {results['hardware']['load_average'][0]:.1f} (shared machine).",
             f"Anny: {results['render_vertices']} render vertices, {results['triangles']} triangles; "
             f"{args.frames} frames per case after one warm-up. `python benchmarks/render_core.py`.", "",
             "| case | wall ms (median) | wall ms (min) | CPU ms (median) |", "|---|---|---|---|"]
    for key, r in results["cases"].items():
        lines.append(f"| {key} | {r['wall_ms_median']} | {r['wall_ms_min']} | {r['cpu_ms_median']} |")
    for key in ("make_texture_1024", "make_texture_512", "sensor_and_jpeg"):
        r = results[key]
        lines.append(f"| {key} | {r['wall_ms_median']} | {r['wall_ms_min']} | {r['cpu_ms_median']} |")
    lines += ["", "Examples: render_core_example_1.jpg, render_core_example_2.jpg."]
    (RESULTS / "render_core.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
