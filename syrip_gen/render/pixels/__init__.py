"""Pixels: the pyrender/EGL renderer (``renderer`` and its context ``gl``, the only modules that
import pyrender, lazily), the support plane without GL (``support_paint``), body quick-looks
(``preview``), and the camera's optics and sensor (``optics``, ``sensor``)."""
