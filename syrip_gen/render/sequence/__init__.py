"""Clips: the same scene drawn frame by frame by the one image maker, with per-frame body poses
and cameras (``clips``: config and run; ``clip_plan``: a clip's plan; ``motion``: limb motion and
camera paths; ``clip_render``: frames, annotations and contact records of one clip)."""
