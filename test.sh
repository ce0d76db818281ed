#!/usr/bin/env bash
# The whole test suite: lint, types, hermetic tests, and the tests against the real embedded vLLM.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
