"""What the tests share that is not a fixture: tiny fits files and datasets, a numpy stand-in for the GL
renderer, and fault injection. Imported as ``helpers.<module>`` (``tests/`` is on ``sys.path``: conftest.py)."""
