#!/usr/bin/env bash
# Set up (if needed) and run the closed-loop demo: Maze2D simulator + Diffuser planner with the
# shipped checkpoint, one goal across the U-Maze, a plot of the driven path in results/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/.venv/diffuser_env.sh"
cd "$ROOT"
exec python -m diffuser_ros.demo "$@"
