#!/usr/bin/env bash
# Quick start, part 1: set up, build the sample index, and serve the chat app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/rag ui "$@"
