"""Pictures of the gates for people: one histogram per gate with its threshold (``filter/hist_<gate>.png``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from syrip_gen.gates.table import GATES


def histograms(values: dict[str, np.ndarray], cfg, out_dir: Path) -> list[str]:
    """One PNG per gate that ``cfg`` (a ``FilterConfig``) runs: the values' histogram with the
    threshold as a red line; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for gate, (side, attr, what) in GATES.items():
        if gate not in cfg.gates or gate not in values:
            continue
        v = values[gate][np.isfinite(values[gate])]
        if not len(v):
            continue
        thr = getattr(cfg, attr)
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
        hi = max(float(v.max()), thr) * 1.05 if gate == "duplicate" else None
        bins = np.linspace(min(float(v.min()), thr), hi if hi else max(float(v.max()), thr * 1.05), 31)
        if gate == "duplicate":
            v = np.minimum(v, bins[-1])
        ax.hist(v, bins=bins, color="#4c72b0", edgecolor="white")
        ax.axvline(thr, color="#c44e52", lw=2, label=f"threshold {thr:g} (fail {side})")
        n_fail = int(np.sum(v > thr) if side == "above" else np.sum(v < thr))
        ax.set_title(f"{gate}: {n_fail} of {len(v)} fail", fontsize=10)
        ax.set_xlabel(what, fontsize=8)
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"hist_{gate}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(str(path))
    return paths
