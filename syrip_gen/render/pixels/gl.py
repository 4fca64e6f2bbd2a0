"""The process's one offscreen OpenGL context (pyrender on EGL) and pyrender's patches.

One EGL context per process (module-level :data:`_GL`), shared by all renderers and made on
first use; renders from several threads are serialised by :data:`LOCK`. pyrender is imported
here only, lazily (:func:`import_pyrender`), so importing this module needs no GL. Do not fork
a process after the context exists (EGL contexts do not survive fork).
"""
from __future__ import annotations

import ctypes.util
import os
import threading

import numpy as np

from syrip_gen.errors import UserError

_GL = None  # the process's one pyrender.OffscreenRenderer (one EGL context per process)
LOCK = threading.RLock()  # the one context can be current in one thread at a time
_MSAA_SAMPLES = 4  # multisampling of the offscreen framebuffer (see import_pyrender)


def import_pyrender():
    """Import pyrender for headless EGL rendering (PYOPENGL_PLATFORM must be set first)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    # pyrender 0.1.45 uses ``np.infty`` (mesh bounds), an alias numpy 2.0 removed; restore it
    # (same value) rather than pinning numpy < 2.
    if not hasattr(np, "infty"):
        np.infty = np.inf
    import pyrender
    import pyrender.renderer as pr_renderer

    if not getattr(pr_renderer, "_syrip_msaa_patch", False):
        # pyrender hard-codes 4x MSAA for its offscreen framebuffer; route the call through
        # _MSAA_SAMPLES so a Renderer can choose (on llvmpipe 4x costs ~2-3x the shading time).
        storage = pr_renderer.glRenderbufferStorageMultisample

        def storage_with_our_samples(target, _samples, *rest):
            return storage(target, _MSAA_SAMPLES, *rest)

        pr_renderer.glRenderbufferStorageMultisample = storage_with_our_samples
        pr_renderer._syrip_msaa_patch = True
    return pyrender


def _create_offscreen(width: int, height: int):
    """A new ``pyrender.OffscreenRenderer`` (raises whatever pyrender/PyOpenGL/EGL raise)."""
    pyrender = import_pyrender()
    return pyrender.OffscreenRenderer(width, height)


def _missing_gl_libraries() -> list[str]:
    wanted = {"EGL": "libEGL.so.1", "GL": "libGL.so.1"}
    return [lib for name, lib in wanted.items() if ctypes.util.find_library(name) is None]


def egl_error_message(err: BaseException) -> str:
    """One line: why no EGL context could be made and how to get one."""
    missing = _missing_gl_libraries()
    what = f"{', '.join(missing)} not found" if missing else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    platform = os.environ.get("PYOPENGL_PLATFORM", "egl")
    return (f"cannot open an offscreen OpenGL context (PYOPENGL_PLATFORM={platform}; {what}); "
            "install EGL + Mesa (Debian/Ubuntu: `sudo apt-get install libegl1 libgl1-mesa-dri`) "
            "or, on an NVIDIA GPU, the NVIDIA driver with its EGL library (libEGL_nvidia)")


def offscreen(width: int, height: int):
    """The process's offscreen renderer, sized ``width x height`` (created on first use)."""
    global _GL
    if _GL is None:
        try:
            _GL = _create_offscreen(width, height)
        except UserError:
            raise
        except Exception as err:  # any failure here is an environment problem
            raise UserError(egl_error_message(err)) from err
    _GL.viewport_width, _GL.viewport_height = int(width), int(height)
    return _GL


def use_msaa(gl, samples: int) -> None:
    """Switch the shared framebuffer to ``samples``x multisampling (rebuilt on the next frame)."""
    global _MSAA_SAMPLES
    if samples != _MSAA_SAMPLES:
        _MSAA_SAMPLES = int(samples)
        if gl._renderer is not None and gl._renderer._main_fb is not None:
            gl._platform.make_current()
            gl._renderer._delete_main_framebuffer()
