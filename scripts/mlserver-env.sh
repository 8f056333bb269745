#!/usr/bin/env bash
# MLServer (the reference Open Inference Protocol server of tests/serving/test_oip_mlserver.py and bench/serve.py)
# in its own virtualenv, .tools/mlserver: its pinned dependencies conflict with the project's uv.lock, and it is
# a yardstick, not a part of the platform. Pins: MLServer 1.7.1 crashes at start with uvloop >= 0.22; pandas 3
# is not what 1.7.1 was released against. A no-op (a stamp file naming the pins) when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.tools/mlserver
# scikit-learn and joblib at the project's locked versions: both servers load the very same pickled estimator
locked() { awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' uv.lock; }
PINS=("mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop<0.22" "pandas<3"
      "scikit-learn==$(locked scikit-learn)" "joblib==$(locked joblib)")
STAMP="$VENV/.installed"
UV=${UV:-$(command -v uv || echo .tools/bin/uv)}
if [ -x "$VENV/bin/mlserver" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PINS[*]}" ]; then
  echo "mlserver-env: ${PINS[*]} present"
  exit 0
fi
rm -f "$STAMP"
"$UV" venv --quiet --allow-existing --python "${PYTHON:-python3}" "$VENV"
"$UV" pip install --quiet --python "$VENV/bin/python" "${PINS[@]}"
# it must import and find its sklearn runtime, or the stamp is not written
"$VENV/bin/python" -c 'import mlserver, mlserver_sklearn, uvloop; print("mlserver-env: mlserver", mlserver.__version__, "uvloop", uvloop.__version__)'
echo "${PINS[*]}" > "$STAMP"
