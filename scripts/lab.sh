#!/usr/bin/env bash
# The main job: JupyterLab on the quickstart notebook (the concept explorer on the shapes world).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
root=""; [ "$(id -u)" = 0 ] && root="--allow-root"
exec .venv/bin/jupyter lab --ip 127.0.0.1 $root notebooks/01_quickstart.ipynb
