# The README's two commands: `make demo` and `make test` (the full lane, which CI runs: .ci/run).
# `make test-fast` is the lane for while you work (< 5 min on a 2-core CPU): the tests marked
# slow in tests/conftest.py (toy pipelines, model trainings) are left out. Both print the 25 slowest tests.
.PHONY: setup demo test test-fast
setup:
	@bash scripts/setup.sh
demo: setup
	.venv/bin/syrip-gen pipeline run pipelines/demo.yaml
test: setup
	@bash scripts/install_browser.sh
	.venv/bin/python -m pytest -q --durations=25
test-fast: setup
	@bash scripts/install_browser.sh
	.venv/bin/python -m pytest -q --durations=25 -m "not slow"
