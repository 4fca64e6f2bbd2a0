"""What a picture holds: the scene (bodies, support, lights, camera: ``scene``), its JSON spec
(``spec``), the fits prepared as sources (``sources``), the sampled variants (``variants``),
where extra infants go (``placement``) and how bodies rest on the support (``contact``).
Pure numpy/torch: no GL, no pixels."""
