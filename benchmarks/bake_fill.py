"""How baked photo textures fill texels the photo never showed (issue 26, item 6): the share of
on-island texels left at their part's mean colour, copied from the same part's seen texels
(``bake.copy_from_part``), mirrored and observed, and whether copies keep the part's pattern
(median over parts of std(copied texels) / std(seen texels); a flat mean fill gives 0).

Run: ``python benchmarks/bake_fill.py FITS.jsonl [--n 12]`` (the fits' photos must be where the
fits file says). Prints one JSON line per fit and a summary; bakes nothing to disk."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main(argv=None) -> None:
    from syrip_gen.body import load_body
    from syrip_gen.render.looks.bake import BakeConfig, bake, texel_parts
    from syrip_gen.render.looks.photo_textures import _read_photo, photo_path
    from syrip_gen.render.looks.uv import TopologyMaps

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fits")
    p.add_argument("--n", type=int, default=12, help="the first N ok fits with a camera")
    args = p.parse_args(argv)
    recs = [json.loads(line) for line in open(args.fits)]
    recs = [r for r in recs if r.get("status", "ok") == "ok" and r.get("camera")][:args.n]
    body = load_body("anny")
    topo = body.topology()
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3), body.shape_mean[None].float(), with_vertices=True).vertices[0].double().numpy()
    cfg, rows, t0 = BakeConfig(), [], time.time()
    maps = TopologyMaps(topo, rest)
    parts = texel_parts(maps, cfg.size)
    for r in recs:
        _, photo, why = _read_photo(photo_path(r, args.fits), r)
        if why:
            continue
        with torch.no_grad():
            v = body(torch.tensor([r["pose"]], dtype=torch.float32), torch.tensor([r["shape"]], dtype=torch.float32),
                     with_vertices=True).vertices[0].double().numpy()
        cam = r["camera"]
        vc = v @ np.asarray(cam["R"], np.float64).T + np.asarray(cam["t"])
        K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]])
        b = bake(photo, vc, K, maps, cfg, seed=0)
        if b.status != "ok":
            rows.append({"status": b.status})
            continue
        grey = b.texture.astype(float).mean(-1)
        ratios = []
        for k in np.unique(parts):
            seen, copied = grey[(parts == k) & (b.source == 0)], grey[(parts == k) & (b.source == 3)]
            if len(seen) > 50 and len(copied) > 50:
                ratios.append(copied.std() / max(seen.std(), 1e-6))
        rows.append({**b.record(), "mean_before_copy": round(b.mean + b.copied, 4),
                     "std_ratio": round(float(np.median(ratios)), 3) if ratios else None})
        print(json.dumps(rows[-1]), flush=True)
    ok = [x for x in rows if x.get("status") == "ok"]
    avg = lambda k: round(float(np.mean([x[k] for x in ok])), 4)  # noqa: E731
    print(json.dumps({"fits": len(rows), "ok": len(ok), "mean_share_before": avg("mean_before_copy"),
                      "mean_share_after": avg("mean"), "copied_share": avg("copied"), "observed": avg("observed"),
                      "mirrored": avg("mirrored"),
                      "std_ratio_median": round(float(np.median([x["std_ratio"] for x in ok if x["std_ratio"]])), 3),
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
