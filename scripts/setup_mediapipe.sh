#!/usr/bin/env bash
# Optional: a separate venv for the MediaPipe baseline (mediapipe pins its own dependencies;
# keeping it apart leaves the main .venv untouched).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-mediapipe/bin/python ] || python3 -m venv .venv-mediapipe
.venv-mediapipe/bin/python -m pip install -q "mediapipe==0.10.14"
