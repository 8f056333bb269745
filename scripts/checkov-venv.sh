#!/usr/bin/env bash
# checkov (Kubernetes static analysis of the rendered chart, tests/chart/test_checkov.py) in its own
# virtualenv, .tools/checkov-venv: its pinned dependencies conflict with the project's uv.lock.
# A no-op when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=3.3.30
VENV=.tools/checkov-venv
UV=${UV:-$(command -v uv || echo .tools/bin/uv)}
if [ -x "$VENV/bin/checkov" ] && [ "$("$VENV/bin/checkov" --version 2>/dev/null)" = "$CHECKOV_VERSION" ]; then
  echo "checkov-venv: checkov $CHECKOV_VERSION present"
  exit 0
fi
"$UV" venv --quiet --python "${PYTHON:-python3}" "$VENV"
"$UV" pip install --quiet --python "$VENV/bin/python" "checkov==$CHECKOV_VERSION"
echo "checkov-venv: checkov $("$VENV/bin/checkov" --version)"
