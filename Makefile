# The README's two commands: `make demo` and `make test`.
.PHONY: setup demo test
setup:
	@bash scripts/setup.sh
demo: setup
	.venv/bin/syrip-gen pipeline run pipelines/demo.yaml
test: setup
	@bash scripts/install_browser.sh
	.venv/bin/python -m pytest -q
