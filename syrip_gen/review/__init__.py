"""Human review of rendered samples: decisions file (``decisions.py``), local web server
(``server.py``) and the static page (``static/``)."""
