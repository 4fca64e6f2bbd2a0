"""One annotated image from a spec: the render config (``config``), the image maker that draws a
scene's layers into the photo (``compose``) and the per-process worker state (``worker``), shared
by still renders and clips."""
