"""The gate table: for each gate, which side of its threshold fails, the ``FilterConfig`` field
holding the threshold, and what its value is (report and histogram labels).

Grouped by what computes the values (``gates/values.py``); :data:`GATES` lists them in verdict
order, which is the order of an image's reasons (duplicates last: they depend on what else is kept).
"""
from __future__ import annotations

# from the annotation's keypoints and box (gates/framing.py)
FRAMING = {
    "out_of_frame": ("above", "max_out_of_frame", "share of the 17 keypoints outside the image"),
    "too_small": ("below", "min_body_size", "sqrt(box area / image area)"),
    "too_large": ("above", "max_body_size", "sqrt(box area / image area)"),
    "few_visible": ("below", "min_visible", "keypoints labelled in the image (v>=1, see gates.framing)"),
}
# from the annotation's body pose (gates/pose.py: fit.limits, fit.prior)
POSE = {
    "hyperextension": ("above", "max_hyperextension_rad", "hyperextension (rad), fit.limits"),
    "joint_limits": ("above", "max_joint_limit_rad", "joint-limit violation (rad), fit.limits"),
    "pose_prior": ("above", "max_prior_nll", "pose NLL under fit.prior.default_prior()"),
}
# from the render's own contact record (render.contact)
CONTACT = {
    "hovering": ("above", "max_hover_m", "height (m) of the back (supine/side) or feet (standing) above the support"),
    "unbalanced": ("below", "min_balance_m", "centre of mass inside the touching vertices' hull (m; < 0 tips over)"),
}
# one each: the source fit's error (fits file), the posed mesh (gates/penetration.py), the other samples
SINGLE = {
    "fit_error": ("above", "max_fit_error", "mean normalised reprojection error of the source fit"),
    "penetration": ("above", "max_penetration", "worst share of a body part inside another"),
    "duplicate": ("below", "duplicate_score", "max(2D distance / max, pose distance / max) to the nearest kept sample"),
}

ORDER = ("fit_error", "out_of_frame", "too_small", "too_large", "few_visible", "hyperextension", "joint_limits",
         "penetration", "pose_prior", "hovering", "unbalanced", "duplicate")
_ALL = {**FRAMING, **POSE, **CONTACT, **SINGLE}
# gate name -> (which side fails, FilterConfig field holding its threshold, what the value is)
GATES: dict[str, tuple[str, str, str]] = {gate: _ALL[gate] for gate in ORDER}
