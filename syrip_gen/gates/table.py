"""The gates in verdict order: an image's reasons follow this order (duplicates last: they
depend on what else is kept). Each gate's row (which side of its threshold fails, the
``FilterConfig`` field holding the threshold, what its value is) stands beside the code that
computes its value (``gates/values.py``).
"""
from __future__ import annotations

from syrip_gen.gates.values import CONTACT, DUPLICATE, FIT_ERROR, FRAMING, PENETRATION, POSE

ORDER = ("fit_error", "out_of_frame", "too_small", "too_large", "few_visible", "hyperextension", "joint_limits",
         "penetration", "pose_prior", "hovering", "unbalanced", "duplicate")
_ALL = {**FIT_ERROR, **FRAMING, **POSE, **PENETRATION, **CONTACT, **DUPLICATE}
# gate name -> (which side fails, FilterConfig field holding its threshold, what the value is)
GATES: dict[str, tuple[str, str, str]] = {gate: _ALL[gate] for gate in ORDER}
