"""The render worker's state: one body, one image maker (its GL context) and one pose checker per
process and thread, made on first use and kept; and torch held to one thread while drawing.

Why its own module: the shard worker (``render/run.py``) and the clip renderer (``render/sequence/clips.py``)
both draw through it, and the clip renderer sits below ``render/run.py`` (no import back up).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass

from syrip_gen.render.image import compose
from syrip_gen.render.image.config import RenderConfig

_STATE: dict = {}
_STATE_LOCK = threading.Lock()


@dataclass
class WorkerState:
    body: object
    maker: object  # has .render(spec, vertices) -> Rendered
    checker: object


@contextlib.contextmanager
def one_torch_thread():
    """Run torch single-threaded: results must not depend on the thread count (same bytes
    whether a shard runs in a worker, in this process, or on a Dask thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gl_threads(cfg: RenderConfig) -> int:
    """llvmpipe (and OpenCV) threads per worker: ``cfg.run.gl_threads`` or the CPUs shared out
    among workers (benchmarks/results/render_pipeline.md compares 1-2 workers x 1-2 threads)."""
    return int(cfg.run.gl_threads or max(1, (os.cpu_count() or 1) // max(1, cfg.run.workers)))


def worker_state(cfg: RenderConfig) -> WorkerState:
    """One body + renderer per process and thread (EGL contexts are thread-bound)."""
    key = (os.getpid(), threading.get_ident(), json.dumps(cfg.keyed(), sort_keys=True))
    with _STATE_LOCK:
        state = _STATE.get(key)
        if state is None:
            from syrip_gen.gates.pose import PoseChecker

            if cfg.run.gl_threads or cfg.run.workers > 1:  # before this process's GL context exists
                import cv2

                os.environ.setdefault("LP_NUM_THREADS", str(gl_threads(cfg)))
                cv2.setNumThreads(gl_threads(cfg))  # OpenCV's pool too: no oversubscription
            body_key = ("body", os.getpid(), cfg.body)
            body = _STATE.get(body_key) or cfg.body.load()
            _STATE[body_key] = body
            state = WorkerState(body=body, maker=compose.make_image_maker(cfg, body),
                                checker=PoseChecker(cfg.sampling.max_nll_increase))
            _STATE[key] = state
    return state


