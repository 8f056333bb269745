#!/usr/bin/env bash
# The full reproducibility check of `make images` (make images CHECK=1): rebuild every platform image
# from scratch under another tag and compare its digest with the one `make images` recorded.
# (`make test` does the same for the smallest image only: tests/kube/test_images.py.)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.reprolab/images}
again=$(mktemp -d)
trap 'rm -rf "$again"' EXIT
status=0
for name in services build-job fetcher; do
  first=$(cut -d@ -f2 "$OUT/$name.digest")
  TAG=repro-check FORCE=1 OUT="$again" bash scripts/images.sh "$name" >/dev/null
  second=$(cut -d@ -f2 "$again/$name.digest")
  podman rmi "localhost/reprolab/$name:repro-check" >/dev/null
  if [ "$first" = "$second" ]; then
    echo "images-check: $name reproducible ($first)"
  else
    echo "images-check: $name NOT reproducible: $first then $second" >&2
    status=1
  fi
done
exit $status
