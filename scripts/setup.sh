#!/usr/bin/env bash
# Create .venv and install syrip-gen into it (editable, with test extras).
# torch: a CUDA torch already importable by python3 is kept (the venv then sees system packages);
# otherwise torch==2.13.0 is installed first (the CPU wheel on CPU machines), so that the
# package's own "torch>=2.1" requirement is already met and pip pulls no CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    echo "setup: keeping the CUDA torch of $PY (venv with system site-packages)"
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
stamp=.venv/.syrip-gen-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"
echo "setup: .venv ready"
