#!/usr/bin/env bash
# The full reproducibility check of `make images` (make images CHECK=1): rebuild every platform image
# from scratch under another tag and compare its digest with the one `make images` recorded.
# (`make test` does the same for the smallest image only: tests/kube/test_images.py.)
# The rebuild takes the SOURCE_DATE_EPOCH the recorded image was built with (its Created time): the
# default epoch is the time of the last commit that changed an image's inputs, so a commit landing
# during the check (minutes on 2 cores) would otherwise change the epoch and the digest, which is not
# what is being checked. A source edited meanwhile still changes the digest, rightly.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.reprolab/images}
again=$(mktemp -d)
trap 'rm -rf "$again"' EXIT
status=0
for name in services build-job fetcher; do
  ref=$(cut -d@ -f1 "$OUT/$name.digest")
  first=$(cut -d@ -f2 "$OUT/$name.digest")
  epoch=$(podman image inspect --format '{{.Created.Unix}}' "$ref")
  SOURCE_DATE_EPOCH=$epoch TAG=repro-check FORCE=1 OUT="$again" bash scripts/images.sh "$name" >/dev/null
  second=$(cut -d@ -f2 "$again/$name.digest")
  podman rmi "localhost/reprolab/$name:repro-check" >/dev/null
  if [ "$first" = "$second" ]; then
    echo "images-check: $name reproducible ($first, SOURCE_DATE_EPOCH=$epoch)"
  else
    echo "images-check: $name NOT reproducible: $first then $second (SOURCE_DATE_EPOCH=$epoch)" >&2
    status=1
  fi
done
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  echo "images-check: the checkout has uncommitted changes: these digests are not a commit's" >&2
exit $status
