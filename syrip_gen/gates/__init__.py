"""Quality gates for rendered infant samples: each a pure function giving one number per sample.

``filter.py`` compares the numbers with the thresholds of ``FilterConfig`` and records every
rejection with its reason and value. Modules: ``framing`` (keypoints, box, visibility),
``duplicates`` (same pose and view), ``penetration`` (posed mesh inside itself), ``pose``
(prior NLL and joint limits from ``syrip_gen.fit``; also the render's ``PoseChecker``); ``table``
(the gates in verdict order), ``samples`` (annotations and fit records as arrays), ``values``
(the numbers per gate, with the skips counted, and each gate's row), ``calibrate`` (thresholds
raised to the run's own fits), ``histograms`` (a picture per gate).
"""
