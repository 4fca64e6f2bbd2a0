#!/usr/bin/env bash
# The one-shot GPU run of the scaled ablation (issue 15): pipelines/ablation.yaml --profile gpu on one
# H200 machine (16 cores, Python 3.12 with torch/timm/opencv/scipy, no network), then one results JSON.
#
# Here, once:   python scripts/gpu_bundle.py prepare      (gpu_bundle/: real sets downscaled, body, wheels,
#                                                         EGL/GL loader .debs)
# There:        bash scripts/gpu_ablation.sh              (carry: gpu_bundle) -> runs/gpu_ablation/results.json,
#                                                         and $OUT/gpu_ablation_results.json when OUT is set
# Anywhere:     bash scripts/gpu_ablation.sh --dry        CPU, toy sizes, drawn stand-ins: no bundle needed
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ " $* " != *" --dry "* ]]; then
  B=${GPU_BUNDLE:-gpu_bundle}
  for d in "$B/gl" .gl; do
    if compgen -G "$d/*.deb" >/dev/null; then for f in "$d"/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
  done
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$B"/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD/$B/body/anny_code:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  export ANNY_CACHE_DIR=/tmp/anny_cache
  "$PY" scripts/gpu_bundle.py restore-body "$ANNY_CACHE_DIR" --npz "$B/body/anny.npz"
  export PYOPENGL_PLATFORM=egl
  vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -f "$vendor" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-$vendor}; fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
export PYTHONUNBUFFERED=1
exec "$PY" scripts/gpu_ablation.py "$@"   # writes the results after every step, also to $OUT when set
