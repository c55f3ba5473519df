#!/usr/bin/env bash
# make test: lint, then the whole suite. The end-to-end tests start the sandbox cloud
# themselves (tests/e2e/conftest.py); pytest exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
mkdir -p test-output
exec .venv/bin/python -m pytest "$@"
