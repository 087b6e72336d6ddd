#!/usr/bin/env bash
# The whole test suite: JS unit tests (vitest), type checks of the JS views (tsc), the linter (ruff), Python tests,
# notebooks (nbval) and real-browser tests (JupyterLab + Debian chromium via Playwright). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
npm test
npm run typecheck
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest --nbval-lax tests notebooks "$@"
